"""Video rendering speaks lyra.progress: one report per frame, and Cancelled leaves no file."""

import pytest
import torch

from lyra.errors import LyraError
from lyra.progress import Cancelled
from lyra.render import Camera, render_video
from lyra.scene import Gaussians


def _scene():
    g = torch.Generator().manual_seed(0)
    n = 50
    return Gaussians.from_rgb(
        torch.randn(n, 3, generator=g) * 0.3 + torch.tensor([0.0, 0.0, 3.0]), torch.randn(n, 4, generator=g),
        torch.full((n, 3), 0.05), torch.full((n,), 0.8), torch.rand(n, 3, generator=g),
    )


def _cameras(count):
    return Camera.stack([Camera.look_at((0.1 * i, 0, 0), (0, 0, 3), fov_y=1.0, width=16, height=16) for i in range(count)])


def test_render_video_reports_each_frame_up_to_one(tmp_path):
    seen = []
    render_video(_scene(), _cameras(4), tmp_path / "v.mp4", progress=lambda f, text: seen.append((f, text)))
    assert [f for f, _ in seen] == [0.25, 0.5, 0.75, 1.0]
    assert seen[-1][1] == "frame 4/4"


def test_cancelled_from_the_callback_stops_the_render_and_leaves_no_file(tmp_path):
    def cancel(fraction, text):
        if fraction >= 0.5:
            raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        render_video(_scene(), _cameras(4), tmp_path / "v.mp4", progress=cancel)
    assert list(tmp_path.iterdir()) == []
    assert issubclass(Cancelled, LyraError)

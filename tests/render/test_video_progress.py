"""Video rendering speaks lyra.progress: one report per frame, and Cancelled leaves no file."""

import re

import pytest
import torch

from lyra.errors import LyraError
from lyra.progress import Cancelled, format_duration
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
    assert re.fullmatch(r"frame 4/4, \d+\.\d s/frame", seen[-1][1])
    assert re.fullmatch(r"frame 1/4, \d+\.\d s/frame, about \d+ s left", seen[0][1])  # an ETA from the first frame


def test_the_time_left_is_the_mean_frame_time_times_the_frames_left(tmp_path, monkeypatch):
    import lyra.render.video as video

    clock = iter([0.0, 20.0, 40.0, 60.0, 80.0])  # the start, then 20 s per frame
    monkeypatch.setattr(video, "perf_counter", lambda: next(clock))
    seen = []
    render_video(_scene(), _cameras(4), tmp_path / "v.mp4", progress=lambda f, text: seen.append(text))
    assert seen == ["frame 1/4, 20.0 s/frame, about 60 s left", "frame 2/4, 20.0 s/frame, about 40 s left",
                    "frame 3/4, 20.0 s/frame, about 20 s left", "frame 4/4, 20.0 s/frame"]


def test_durations_read_as_people_say_them():
    assert [format_duration(s) for s in (0, 44.6, 89, 91, 3000, 5400, 7500, -3)] == [
        "0 s", "45 s", "89 s", "2 min", "50 min", "1 h 30 min", "2 h 05 min", "0 s"]


def test_cancelled_from_the_callback_stops_the_render_and_leaves_no_file(tmp_path):
    def cancel(fraction, text):
        if fraction >= 0.5:
            raise Cancelled("cancelled by the user")

    with pytest.raises(Cancelled):
        render_video(_scene(), _cameras(4), tmp_path / "v.mp4", progress=cancel)
    assert list(tmp_path.iterdir()) == []
    assert issubclass(Cancelled, LyraError)

"""`lyra render` and the video/image writers."""

from __future__ import annotations

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.errors import InputDataError
from lyra.render import Camera, CameraPath, Keyframe, frame_scene, render_video, write_video
from lyra.scene import Gaussians, GaussianSequence, save


def tiny_scene(n=200, seed=0, shift=0.0):
    gen = torch.Generator().manual_seed(seed)
    return Gaussians.from_rgb(
        torch.randn(n, 3, generator=gen) * 0.4 + torch.tensor([shift, 0.0, 3.0]), torch.randn(n, 4, generator=gen),
        torch.rand(n, 3, generator=gen) * 0.08 + 0.02, torch.rand(n, generator=gen) * 0.8 + 0.2, torch.rand(n, 3, generator=gen),
    )


def video_frames(path):
    reader = iio2.get_reader(path)
    try:
        return reader.count_frames(), reader.get_meta_data()["size"]
    finally:
        reader.close()


def test_render_cli_writes_mp4_with_the_requested_frames_and_size(tmp_path):
    scene = save(tiny_scene(), tmp_path / "scene.ply")
    out = tmp_path / "video.mp4"
    rc = main(["render", str(scene), "--trajectory", "left", "--frames", "6", "--size", "48x32", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert video_frames(out) == (6, (48, 32))


def test_render_cli_writes_a_png_still_of_odd_size(tmp_path):
    scene = save(tiny_scene(), tmp_path / "scene.ply")
    out = tmp_path / "still.png"
    assert main(["render", str(scene), "--out", str(out), "--size", "33x21", "--background", "black"]) == 0
    image = iio.imread(out)
    assert image.shape == (21, 33, 3)
    assert image[0, 0].tolist() == [0, 0, 0] and image.max() > 0  # black corner, splats in view


def test_render_cli_follows_a_camera_path_json(tmp_path):
    scene = save(tiny_scene(), tmp_path / "scene.ply")
    path = CameraPath([Keyframe((0.0, 0, 0), look_at=(0.0, 0, 3)), Keyframe((0.5, 0, 0), look_at=(0.0, 0, 3))]).save(tmp_path / "p.json")
    out = tmp_path / "v.mp4"
    assert main(["render", str(scene), "--trajectory", str(path), "--frames", "4", "--size", "32x32", "--out", str(out), "--no-progress"]) == 0
    assert video_frames(out)[0] == 4


def test_render_cli_rejects_odd_mp4_sizes_and_unknown_trajectories(tmp_path, capsys):
    scene = save(tiny_scene(n=5), tmp_path / "scene.ply")
    assert main(["render", str(scene), "--size", "33x21", "--out", str(tmp_path / "v.mp4")]) == 1
    assert "even width and height" in capsys.readouterr().err
    assert main(["render", str(scene), "--trajectory", "sideways", "--out", str(tmp_path / "v.mp4")]) == 1
    assert "sideways" in capsys.readouterr().err
    assert not (tmp_path / "v.mp4").exists()


def test_sequence_time_advances_along_the_video_unless_frozen(tmp_path):
    # Frame 0 is all left of centre, frame 1 all right: the first and last video frames differ.
    seq = GaussianSequence([tiny_scene(n=60, shift=-1.0), tiny_scene(n=60, shift=1.0)], fps=1.0)
    cams = Camera.look_at([0.0, 0, -1.0], [0.0, 0, 3.0], width=32, height=16).c2w.expand(3, 4, 4)
    cameras = Camera.from_fov(cams, 1.2, 32, 16)
    moving, frozen = tmp_path / "moving.mp4", tmp_path / "frozen.mp4"
    render_video(seq, cameras, moving, fps=3)
    render_video(seq, cameras, frozen, fps=3, times=[0.0, 0.0, 0.0])
    a = iio.imread(moving)  # [F, H, W, 3]
    b = iio.imread(frozen)
    assert a.shape == (3, 16, 32, 3)
    left_heavy = lambda img: img[:, :16].astype(float).mean() < img[:, 16:].astype(float).mean()  # darker = more splats
    assert left_heavy(a[0]) and not left_heavy(a[-1])
    assert np.abs(b[0].astype(int) - b[-1].astype(int)).max() <= 2


def test_write_video_rejects_odd_sizes_and_keeps_existing_file(tmp_path):
    target = tmp_path / "v.mp4"
    target.write_bytes(b"old")
    with pytest.raises(InputDataError, match="even"):
        write_video(target, [np.zeros((5, 6, 3), np.uint8)])
    assert target.read_bytes() == b"old"


def test_frame_scene_uses_the_first_camera_for_lyra_like_scenes():
    framing = frame_scene(tiny_scene())
    assert torch.equal(framing.origin_c2w, torch.eye(4, dtype=torch.float64))
    assert 2.5 < framing.center_depth < 3.5


def test_frame_scene_backs_off_to_fit_other_scenes():
    g = tiny_scene().replace(means=tiny_scene().means - torch.tensor([0.0, 0.0, 3.0]))
    framing = frame_scene(g)
    eye = framing.origin_c2w[:3, 3]
    assert eye[2] < -framing.radius  # behind the scene on its -z side
    assert torch.allclose(framing.origin_c2w[:3, 2], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6)

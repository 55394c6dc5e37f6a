"""Keyframed camera paths: interpolation and the JSON file."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lyra.errors import CameraPathError
from lyra.render import Camera, CameraPath, Keyframe


def make_path(with_time=False):
    t = (lambda v: v) if with_time else (lambda v: None)
    return CameraPath([
        Keyframe((0.0, 0.0, 0.0), look_at=(0.0, 0.0, 2.0), fov_deg=60.0, time=t(0.0)),
        Keyframe((1.0, -0.5, 0.2), look_at=(0.0, 0.0, 2.0), fov_deg=40.0, time=t(1.0)),
        Keyframe((2.0, 0.0, 1.0), wxyz=(math.cos(0.3), 0.0, math.sin(0.3), 0.0), fov_deg=50.0, time=t(3.0)),
    ])


def test_sampling_passes_through_every_keyframe():
    path = make_path()
    cams, times = path.sample(9, 64, 48)  # u = 0, 0.25, ..., 2: keyframes at frames 0, 4, 8
    assert times is None and cams.batch_shape == (9,)
    for frame, key in zip((0, 4, 8), path.keyframes, strict=True):
        assert torch.allclose(cams.position[frame], torch.tensor(key.position), atol=1e-6)
        assert torch.allclose(cams.rotation[frame], key.rotation().float(), atol=1e-5)
        assert math.isclose(math.degrees(float(cams.fov_y[frame])), key.fov_deg, rel_tol=1e-5)


def test_interpolated_rotations_stay_orthonormal_and_fov_is_between_keys():
    cams, _ = make_path().sample(21, 32, 32)
    rot = cams.rotation
    assert torch.allclose(rot.transpose(-1, -2) @ rot, torch.eye(3).expand(21, 3, 3), atol=1e-5)
    fov = torch.rad2deg(cams.fov_y)
    assert torch.all(fov >= 40 - 1e-3) and torch.all(fov <= 60 + 1e-3)


def test_times_are_interpolated_linearly():
    _, times = make_path(with_time=True).sample(5, 8, 8)
    assert torch.allclose(times, torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0], dtype=torch.float64))


def test_json_round_trip(tmp_path):
    path = make_path(with_time=True)
    file = path.save(tmp_path / "path.json")
    loaded = CameraPath.load(file)
    assert loaded == path
    a, ta = path.sample(7, 16, 16)
    b, tb = loaded.sample(7, 16, 16)
    assert torch.equal(a.c2w, b.c2w) and torch.equal(ta, tb)


def test_keyframe_from_camera_reproduces_the_camera():
    cam = Camera.look_at([0.5, 0.1, -1.0], [0.0, 0.0, 2.0], width=40, height=30, fov_y=math.radians(45))
    cams, _ = CameraPath([Keyframe.from_camera(cam)]).sample(1, 40, 30)
    assert torch.allclose(cams.c2w[0], cam.c2w, atol=1e-6)


def test_invalid_json_is_a_camera_path_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CameraPathError, match="invalid JSON"):
        CameraPath.load(bad)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"keyframes": []}, "at least one keyframe"),
        ({"keyframes": [{"position": [0, 0]}]}, "look_at"),
        ({"keyframes": [{"position": [0, 0, 0, 1], "look_at": [0, 0, 1]}]}, "3 finite numbers"),
        ({"keyframes": [{"position": [0, 0, 0], "look_at": [0, 0, 1], "fov_deg": 200}]}, "fov_deg"),
        ({"keyframes": [{"position": [0, 0, 0], "wxyz": [0, 0, 0, 0]}]}, "zero quaternion"),
        ({"version": 9, "keyframes": []}, "version"),
        ([1, 2], "'keyframes' list"),
    ],
)
def test_bad_keyframes_are_rejected_with_the_reason(tmp_path, data, message):
    file = tmp_path / "p.json"
    file.write_text(json.dumps(data))
    with pytest.raises(CameraPathError, match=message):
        CameraPath.load(file)


def test_missing_file_is_a_camera_path_error(tmp_path):
    with pytest.raises(CameraPathError, match="cannot read"):
        CameraPath.load(tmp_path / "nope.json")

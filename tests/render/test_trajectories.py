"""Lyra trajectory presets (LYRA_FACTS.md formulas) and the orbit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lyra.errors import InputDataError
from lyra.render import LYRA_PRESETS, lyra_positions, lyra_trajectory, orbit, preset_distance


@pytest.mark.parametrize(
    "name, axis, sign", [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1), ("zoom_in", 2, 1), ("zoom_out", 2, -1)]
)
def test_linear_presets_move_i_times_distance_over_n(name, axis, sign):
    n, d, depth = 121, 0.25, 2.0
    pos = lyra_positions(name, n, distance=d, center_depth=depth)
    assert pos.shape == (n, 3)
    i = torch.arange(n, dtype=torch.float64)
    expected = torch.zeros(n, 3, dtype=torch.float64)
    expected[:, axis] = sign * i * d * depth / n
    assert torch.allclose(pos, expected)


@pytest.mark.parametrize("name, sign", [("clockwise", 1.0), ("counterclockwise", -1.0)])
def test_spiral_presets_follow_the_formula(name, sign):
    n, d = 121, 0.5
    pos = lyra_positions(name, n, distance=d)
    theta = torch.linspace(0, 4 * math.pi, n, dtype=torch.float64)
    assert torch.allclose(pos[:, 0], 0.15 * d * (torch.cos(theta) - 1))
    assert torch.allclose(pos[:, 1], sign * 0.10 * d * torch.sin(theta))
    assert torch.allclose(pos[:, 2], torch.zeros(n, dtype=torch.float64))


def test_none_preset_stays_at_the_origin():
    assert torch.equal(lyra_positions("none", 7, distance=0.3), torch.zeros(7, 3, dtype=torch.float64))


def test_default_distance_is_the_range_midpoint_times_factor():
    assert math.isclose(preset_distance("left"), 0.25)
    assert math.isclose(preset_distance("clockwise", 2.0), 1.0)
    drawn = preset_distance("up", 1.0, np.random.default_rng(0))
    assert 0.1 <= drawn <= 0.2


def test_center_facing_cameras_look_at_the_center():
    cams = lyra_trajectory("right", 121, center_depth=1.5, width=64, height=32)
    assert cams.batch_shape == (121,) and (cams.width, cams.height) == (64, 32)
    target = torch.tensor([0.0, 0.0, 1.5])
    to_target = torch.nn.functional.normalize(target - cams.position, dim=-1)
    assert torch.allclose(cams.forward, to_target, atol=1e-5)
    assert torch.allclose(cams.position[-1], torch.tensor([120 * 0.25 * 1.5 / 121, 0.0, 0.0]), atol=1e-6)


def test_distance_factor_scales_the_motion():
    one = lyra_trajectory("zoom_in", 11, rotation="none")
    two = lyra_trajectory("zoom_in", 11, rotation="none", distance_factor=2.0)
    assert torch.allclose(two.position, 2 * one.position, atol=1e-6)


def test_rotation_none_keeps_the_first_orientation():
    cams = lyra_trajectory("left", 9, rotation="none")
    assert torch.allclose(cams.rotation, torch.eye(3).expand(9, 3, 3))


def test_trajectory_aligned_looks_along_the_motion():
    cams = lyra_trajectory("left", 9, rotation="trajectory_aligned")
    assert torch.allclose(cams.forward, torch.tensor([-1.0, 0.0, 0.0]).expand(9, 3), atol=1e-6)


def test_origin_c2w_maps_the_trajectory_into_the_world():
    origin = torch.eye(4, dtype=torch.float64)
    origin[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    cams = lyra_trajectory("right", 5, distance=0.5, origin_c2w=origin, rotation="none")
    assert torch.allclose(cams.position[0], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(cams.position[4], torch.tensor([1.0 + 4 * 0.5 / 5, 2.0, 3.0]))


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(InputDataError, match="unknown trajectory 'sideways'"):
        lyra_trajectory("sideways")
    assert set(LYRA_PRESETS) >= {"left", "right", "up", "down", "zoom_in", "zoom_out", "clockwise", "counterclockwise", "none"}


def test_orbit_keeps_radius_and_faces_the_target():
    target = torch.tensor([0.5, -0.2, 3.0])
    cams = orbit(target, 2.0, 24, elevation=math.radians(20))
    assert torch.allclose((cams.position - target).norm(dim=-1), torch.full((24,), 2.0), atol=1e-5)
    to_target = torch.nn.functional.normalize(target - cams.position, dim=-1)
    assert torch.allclose(cams.forward, to_target, atol=1e-5)
    assert cams.position[0, 2] < target[2]  # azimuth 0 is in front of the target (-z side)
    assert torch.all(cams.position[:, 1] < target[1])  # elevated along up = -y

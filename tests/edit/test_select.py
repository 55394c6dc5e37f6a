"""Selections: spatial (box, sphere, screen rectangle, ray pick), attribute filters, mask algebra."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.edit.select import (
    color_near,
    combine,
    distance_from_center_above,
    invert,
    largest_scale_above,
    opacity_below,
    pick_nearest_on_ray,
    select_box,
    select_screen_rect,
    select_sphere,
)
from lyra.errors import EditError
from lyra.scene import quats_to_rotmats

Z45 = [math.cos(math.pi / 8), 0.0, 0.0, math.sin(math.pi / 8)]  # 45 degrees about +z


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_axis_aligned_box_includes_faces_and_excludes_outside():
    means = t([[0, 0, 0], [1, 2, 3], [1.01, 0, 0], [-1, -2, -3], [0, 2.1, 0]])
    mask = select_box(means, [0, 0, 0], [1, 0, 0, 0], [1, 2, 3])
    assert mask.tolist() == [True, True, False, True, False]


def test_box_rotated_45_degrees_follows_its_diagonal_axis():
    # A thin box along x, rotated 45 deg about z: its long axis is (1, 1, 0)/sqrt(2).
    means = t([[0.6, 0.6, 0], [0.7, 0.7, 0], [0.72, 0.72, 0], [0.9, 0, 0], [-0.5, -0.5, 0.05], [-0.5, -0.5, 0.15]])
    mask = select_box(means, [0, 0, 0], Z45, [1.0, 0.1, 0.1])
    assert mask.tolist() == [True, True, False, False, True, False]


def test_box_centre_offsets_the_box():
    means = t([[5, 5, 5], [0, 0, 0]])
    assert select_box(means, [5, 5, 5], [1, 0, 0, 0], [0.5, 0.5, 0.5]).tolist() == [True, False]


def test_sphere_selects_within_radius_inclusive():
    means = t([[0, 0, 0], [1, 0, 0], [0.8, 0.6, 0.01], [0, 0, -0.5]])
    assert select_sphere(means, [0, 0, 0], 1.0).tolist() == [True, True, False, True]


def test_sphere_rejects_a_centre_of_wrong_size():
    with pytest.raises(EditError, match="sphere center must have 3 numbers"):
        select_sphere(t([[0, 0, 0]]), [0, 0], 1.0)


# Camera at the origin looking down +z, 100x100 image, principal point at the centre.
INTRINSICS = [100.0, 100.0, 50.0, 50.0]


def test_screen_rect_selects_projected_points_inside():
    # Projections: (50,50), (70,50), (50,20), (70,70); the last point is behind the camera.
    means = t([[0, 0, 1], [0.2, 0, 1], [0, -0.3, 1], [0.4, 0.4, 2], [0.2, 0, -1]])
    mask = select_screen_rect(means, torch.eye(4), INTRINSICS, 100, 100, (60, 40, 80, 80))
    assert mask.tolist() == [False, True, False, True, False]


def test_screen_rect_accepts_corners_in_any_order():
    means = t([[0, 0, 1], [0.2, 0, 1], [0, -0.3, 1], [0.4, 0.4, 2]])
    a = select_screen_rect(means, torch.eye(4), INTRINSICS, 100, 100, (60, 40, 80, 80))
    b = select_screen_rect(means, torch.eye(4), INTRINSICS, 100, 100, (80, 80, 60, 40))
    assert torch.equal(a, b)


def test_screen_rect_never_selects_points_behind_the_camera():
    # (0.2, 0, -1) would project to u = 30 by the formula, but it is behind the camera.
    means = t([[0.2, 0, -1], [-0.2, 0, 1]])
    mask = select_screen_rect(means, torch.eye(4), INTRINSICS, 100, 100, (0, 0, 100, 100))
    assert mask.tolist() == [False, True]


def test_screen_rect_uses_the_camera_pose():
    # Camera at (5, 0, 0) looking towards -x (OpenCV: z forward = -x, y down = +y, x right = +z).
    c2w = torch.eye(4)
    c2w[:3, 0] = t([0, 0, 1])
    c2w[:3, 1] = t([0, 1, 0])
    c2w[:3, 2] = t([-1, 0, 0])
    c2w[:3, 3] = t([5, 0, 0])
    means = t([[0, 0, 0.5], [0, 0, -0.5], [6, 0, 0]])  # u = 60, u = 40, behind
    mask = select_screen_rect(means, c2w, INTRINSICS, 100, 100, (55, 45, 65, 55))
    assert mask.tolist() == [True, False, False]


def test_screen_rect_is_clipped_to_the_image():
    means = t([[0.6, 0, 1]])  # u = 110, outside a 100-pixel-wide image
    mask = select_screen_rect(means, torch.eye(4), INTRINSICS, 100, 100, (40, 40, 200, 60))
    assert mask.tolist() == [False]


def test_screen_rect_matches_explicit_projection_for_a_random_camera():
    gen = torch.Generator().manual_seed(2)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = quats_to_rotmats(
        torch.nn.functional.normalize(torch.randn(4, generator=gen, dtype=torch.float64), dim=0)
    )
    c2w[:3, 3] = torch.randn(3, generator=gen, dtype=torch.float64)
    means = torch.randn(4000, 3, generator=gen, dtype=torch.float64) * 3
    cam = (means - c2w[:3, 3]) @ c2w[:3, :3]
    u = 120.0 * cam[:, 0] / cam[:, 2] + 64.0
    v = 90.0 * cam[:, 1] / cam[:, 2] + 48.0
    expected = (cam[:, 2] > 0) & (u >= 20) & (u <= 100) & (v >= 10) & (v <= 70)
    mask = select_screen_rect(means, c2w, [120.0, 90.0, 64.0, 48.0], 128, 96, (100, 70, 20, 10))
    assert int(expected.sum()) > 50
    assert torch.equal(mask, expected)


def test_ray_pick_chooses_the_nearer_of_two_splats_on_the_ray():
    means = t([[0, 0, 3], [0, 0, 1], [5, 5, 5]])
    assert pick_nearest_on_ray(means, [0, 0, 0], [0, 0, 2]) == 1


def test_ray_pick_ignores_splats_behind_the_origin():
    means = t([[0, 0, -1], [0, 0, 4]])
    assert pick_nearest_on_ray(means, [0, 0, 0], [0, 0, 1], max_perp_distance=0.1) == 1


def test_ray_pick_returns_none_when_nothing_is_within_tolerance():
    means = t([[0.5, 0, 1], [0, 0.5, 2]])
    assert pick_nearest_on_ray(means, [0, 0, 0], [0, 0, 1], max_perp_distance=0.1) is None


def test_ray_pick_tolerance_grows_with_splat_scale():
    # Both are 0.2 off the ray; only the big splat (3 * 0.1 = 0.3 >= 0.2) is hit.
    means = t([[0.2, 0, 1], [0.2, 0, 2], [10, 10, 10], [-10, -10, -10]])
    scales = t([[0.01] * 3, [0.1, 0.05, 0.05], [0.01] * 3, [0.01] * 3])
    assert pick_nearest_on_ray(means, [0, 0, 0], [0, 0, 1], scales=scales) == 1


def test_ray_pick_default_tolerance_is_a_fraction_of_scene_size():
    # Scene diagonal ~ 20*sqrt(3); 0.005 of it is ~0.17: a splat 0.1 off the ray is hit, 0.5 off is not.
    means = t([[0.5, 0, 1], [0.1, 0, 2], [10, 10, 10], [-10, -10, -10]])
    assert pick_nearest_on_ray(means, [0, 0, 0], [0, 0, 1]) == 1


def test_opacity_below_is_strict(make_gaussians):
    g = make_gaussians(torch.zeros(3, 3), opacities=[0.01, 0.05, 0.5])
    assert opacity_below(g, 0.05).tolist() == [True, False, False]


def test_largest_scale_above_uses_the_largest_axis(make_gaussians):
    g = make_gaussians(torch.zeros(3, 3), scales=[[0.1, 0.1, 0.1], [0.01, 0.5, 0.01], [0.2, 0.2, 0.2]])
    assert largest_scale_above(g, 0.2).tolist() == [False, True, False]


def test_distance_from_center_defaults_to_median_centre(make_gaussians):
    # The median (0, 0, 0) ignores the far point, which the mean would not.
    g = make_gaussians([[0, 0, 0], [0.1, 0, 0], [-0.1, 0, 0], [0, 0.1, 0], [100, 100, 100]])
    assert distance_from_center_above(g, 1.0).tolist() == [False, False, False, False, True]


def test_distance_from_explicit_centre(make_gaussians):
    g = make_gaussians([[0, 0, 0], [2, 0, 0]])
    assert distance_from_center_above(g, 1.0, center=[2, 0, 0]).tolist() == [True, False]


def test_color_near_uses_rgb_distance(make_gaussians):
    g = make_gaussians(torch.zeros(3, 3), rgb=[[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    assert color_near(g, [1, 0, 0], 0.15).tolist() == [True, True, False]
    assert color_near(g, [1, 0, 0], 0.1).tolist() == [True, False, False]


COMBINE_TABLE = {
    # current, new -> result for (F,F), (F,T), (T,F), (T,T)
    "replace": [False, True, False, True],
    "add": [False, True, True, True],
    "subtract": [False, False, True, False],
    "intersect": [False, False, False, True],
}


@pytest.mark.parametrize("mode", sorted(COMBINE_TABLE))
def test_combine_truth_table(mode):
    current = torch.tensor([False, False, True, True])
    new = torch.tensor([False, True, False, True])
    assert combine(current, new, mode).tolist() == COMBINE_TABLE[mode]


def test_combine_with_no_current_selection_treats_it_as_empty():
    new = torch.tensor([True, False])
    assert combine(None, new, "add").tolist() == [True, False]
    assert combine(None, new, "intersect").tolist() == [False, False]


def test_combine_does_not_modify_its_inputs():
    current, new = torch.tensor([True, False]), torch.tensor([False, True])
    out = combine(current, new, "replace")
    out[:] = True
    assert new.tolist() == [False, True] and current.tolist() == [True, False]


def test_combine_rejects_unknown_mode_and_length_mismatch():
    with pytest.raises(EditError, match="selection mode must be one of"):
        combine(None, torch.tensor([True]), "xor")
    with pytest.raises(EditError, match="has 3 entries, expected 2"):
        combine(torch.zeros(3, dtype=torch.bool), torch.zeros(2, dtype=torch.bool), "add")


def test_invert_flips_every_entry():
    assert invert(torch.tensor([True, False, True])).tolist() == [False, True, False]

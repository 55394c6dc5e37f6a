"""Edit operations: geometry changes only the selected splats; colour ops have known values."""

from __future__ import annotations

import math

import pytest
import torch

from lyra.edit.ops import brightness, quat_multiply, rotate, saturation, scale, tint, translate
from lyra.errors import EditError
from lyra.scene import quats_to_rotmats
from lyra.scene.sh import rgb_to_sh_dc

Z90 = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]  # 90 degrees about +z


def first_two(g):
    return torch.tensor([True, True] + [False] * (len(g) - 2))


def test_translate_moves_only_selected_splats(random_gaussians):
    mask = first_two(random_gaussians)
    out = translate(random_gaussians, mask, [1.0, 2.0, 3.0])
    assert torch.allclose(out.means[:2], random_gaussians.means[:2] + torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(out.means[2:], random_gaussians.means[2:])
    assert torch.equal(out.sh, random_gaussians.sh) and torch.equal(out.quats, random_gaussians.quats)


def test_edit_ops_leave_the_input_untouched(random_gaussians):
    before = random_gaussians.clone()
    mask = first_two(random_gaussians)
    translate(random_gaussians, mask, [1, 1, 1])
    rotate(random_gaussians, mask, Z90, [0, 0, 0])
    scale(random_gaussians, mask, 2.0, [0, 0, 0])
    tint(random_gaussians, mask, [1, 0, 0], 0.5)
    brightness(random_gaussians, mask, 2.0)
    saturation(random_gaussians, mask, 0.0)
    assert random_gaussians.equal(before)


def test_rotate_turns_means_about_the_pivot(make_gaussians):
    g = make_gaussians([[2, 0, 0], [2, 0, 0]])
    out = rotate(g, torch.tensor([True, False]), Z90, [1, 0, 0])
    assert torch.allclose(out.means, torch.tensor([[1.0, 1.0, 0.0], [2.0, 0.0, 0.0]]), atol=1e-6)


def test_rotate_composes_splat_orientations(random_gaussians):
    mask = first_two(random_gaussians)
    out = rotate(random_gaussians, mask, Z90, [0, 0, 0])
    expected = quats_to_rotmats(torch.tensor(Z90)) @ random_gaussians.rotation_matrices()[:2]
    assert torch.allclose(out.rotation_matrices()[:2], expected, atol=1e-5)
    assert torch.equal(out.quats[2:], random_gaussians.quats[2:])


def test_rotate_keeps_world_covariance_consistent(random_gaussians):
    mask = torch.ones(len(random_gaussians), dtype=torch.bool)
    rot = quats_to_rotmats(torch.tensor(Z90))
    out = rotate(random_gaussians, mask, Z90, [0, 0, 0])
    assert torch.allclose(out.covariances(), rot @ random_gaussians.covariances() @ rot.T, atol=1e-6)


def test_rotate_changes_sh_only_of_selected_splats(random_gaussians):
    mask = first_two(random_gaussians)
    out = rotate(random_gaussians, mask, Z90, [0, 0, 0])
    assert not torch.allclose(out.sh[:2, 1:], random_gaussians.sh[:2, 1:])
    assert torch.equal(out.sh[:2, 0], random_gaussians.sh[:2, 0])
    assert torch.equal(out.sh[2:], random_gaussians.sh[2:])


def test_quat_multiply_matches_matrix_product():
    gen = torch.Generator().manual_seed(1)
    a = torch.nn.functional.normalize(torch.randn(8, 4, generator=gen), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(8, 4, generator=gen), dim=-1)
    assert torch.allclose(quats_to_rotmats(quat_multiply(a, b)), quats_to_rotmats(a) @ quats_to_rotmats(b), atol=1e-5)


def test_scale_moves_means_about_pivot_and_scales_sizes(make_gaussians):
    g = make_gaussians([[2, 0, 0], [3, 0, 0]], scales=[[0.1, 0.2, 0.3], [0.1, 0.1, 0.1]])
    out = scale(g, torch.tensor([True, False]), 3.0, [1, 0, 0])
    assert torch.allclose(out.means, torch.tensor([[4.0, 0, 0], [3.0, 0, 0]]))
    assert torch.allclose(out.scales, torch.tensor([[0.3, 0.6, 0.9], [0.1, 0.1, 0.1]]))


def test_scale_rejects_non_positive_factor(make_gaussians):
    g = make_gaussians([[0, 0, 0]])
    with pytest.raises(EditError, match="scale factor must be positive"):
        scale(g, torch.tensor([True]), 0.0, [0, 0, 0])


def test_ops_reject_mask_of_wrong_length(make_gaussians):
    g = make_gaussians([[0, 0, 0], [1, 1, 1]])
    with pytest.raises(EditError, match=r"has 3 entries, expected 2"):
        translate(g, torch.ones(3, dtype=torch.bool), [1, 0, 0])


def test_tint_mixes_base_colour_towards_target(make_gaussians):
    g = make_gaussians(torch.zeros(2, 3), rgb=[[0.2, 0.4, 0.6], [0.2, 0.4, 0.6]])
    out = tint(g, torch.tensor([True, False]), [1.0, 0.0, 0.0], 0.25)
    assert torch.allclose(out.rgb(), torch.tensor([[0.4, 0.3, 0.45], [0.2, 0.4, 0.6]]), atol=1e-6)


def test_tint_fades_view_dependent_bands_by_one_minus_strength(random_gaussians):
    mask = torch.ones(len(random_gaussians), dtype=torch.bool)
    out = tint(random_gaussians, mask, [0, 1, 0], 0.25)
    assert torch.allclose(out.sh[:, 1:], 0.75 * random_gaussians.sh[:, 1:])


def test_brightness_multiplies_base_colour_and_sheen(random_gaussians):
    g = random_gaussians.replace(sh=random_gaussians.sh.clone())
    g.sh[0, 0] = rgb_to_sh_dc(torch.tensor([0.2, 0.3, 0.4]))
    mask = torch.zeros(len(g), dtype=torch.bool)
    mask[0] = True
    out = brightness(g, mask, 1.5)
    assert torch.allclose(out.rgb()[0], torch.tensor([0.3, 0.45, 0.6]), atol=1e-6)
    assert torch.allclose(out.sh[0, 1:], 1.5 * g.sh[0, 1:])
    assert torch.equal(out.sh[1:], g.sh[1:])


def test_saturation_zero_gives_luminance_grey(make_gaussians):
    g = make_gaussians(torch.zeros(1, 3), rgb=[[1.0, 0.0, 0.0]])
    out = saturation(g, torch.tensor([True]), 0.0)
    assert torch.allclose(out.rgb(), torch.full((1, 3), 0.2126), atol=1e-6)


def test_saturation_two_doubles_distance_from_luminance(make_gaussians):
    g = make_gaussians(torch.zeros(1, 3), rgb=[[0.5, 0.6, 0.2]])
    lum = 0.2126 * 0.5 + 0.7152 * 0.6 + 0.0722 * 0.2
    out = saturation(g, torch.tensor([True]), 2.0)
    expected = torch.tensor([lum + 2 * (0.5 - lum), lum + 2 * (0.6 - lum), lum + 2 * (0.2 - lum)])
    assert torch.allclose(out.rgb()[0], expected, atol=1e-6)


def test_saturation_leaves_grey_unchanged(make_gaussians):
    g = make_gaussians(torch.zeros(1, 3), rgb=[[0.3, 0.3, 0.3]])
    assert torch.allclose(saturation(g, torch.tensor([True]), 3.0).rgb(), g.rgb(), atol=1e-6)


def test_empty_selection_changes_nothing(random_gaussians):
    none = torch.zeros(len(random_gaussians), dtype=torch.bool)
    for edited in (
        translate(random_gaussians, none, [1, 1, 1]),
        rotate(random_gaussians, none, Z90, [0, 0, 0]),
        scale(random_gaussians, none, 2.0, [0, 0, 0]),
        saturation(random_gaussians, none, 0.0),
    ):
        assert edited.equal(random_gaussians)

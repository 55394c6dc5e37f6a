"""Rotating SH coefficients: the rotated splat looks, from the rotated direction, as before."""

from __future__ import annotations

import math

import torch

from lyra.edit.ops import rotate
from lyra.edit.sh_rotation import rotate_sh, sh_rotation_matrices
from lyra.scene import quats_to_rotmats
from lyra.scene.sh import eval_sh


def random_rotation(seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return quats_to_rotmats(torch.nn.functional.normalize(torch.randn(4, generator=gen, dtype=torch.float64), dim=0))


def test_rotated_degree3_sh_matches_eval_on_rotated_directions():
    gen = torch.Generator().manual_seed(3)
    sh = torch.randn(20, 16, 3, generator=gen, dtype=torch.float64)
    dirs = torch.nn.functional.normalize(torch.randn(20, 3, generator=gen, dtype=torch.float64), dim=-1)
    rot = random_rotation(4)
    rotated = rotate_sh(sh, rot)
    # eval_sh clamps at 0; compare pre-clamp by lifting the colour well above 0.
    sh[:, 0] += 20.0
    rotated[:, 0] += 20.0
    assert torch.allclose(eval_sh(rotated, dirs @ rot.T), eval_sh(sh, dirs), atol=1e-9)


def test_rotated_degree1_sh_in_float32_matches_within_float_precision():
    gen = torch.Generator().manual_seed(5)
    sh = torch.randn(10, 4, 3, generator=gen)
    sh[:, 0] = 10.0
    dirs = torch.nn.functional.normalize(torch.randn(10, 3, generator=gen), dim=-1)
    rot = random_rotation(6).float()
    assert torch.allclose(eval_sh(rotate_sh(sh, rot), dirs @ rot.T), eval_sh(sh, dirs), atol=1e-5)


def test_band_rotation_matrices_are_orthogonal():
    for matrix in sh_rotation_matrices(random_rotation(7), 3):
        assert torch.allclose(matrix @ matrix.T, torch.eye(len(matrix), dtype=torch.float64), atol=1e-10)


def test_identity_rotation_leaves_sh_unchanged():
    sh = torch.randn(5, 16, 3, generator=torch.Generator().manual_seed(8))
    assert torch.allclose(rotate_sh(sh, torch.eye(3)), sh, atol=1e-6)


def test_rotate_op_keeps_appearance_from_rotated_viewpoint(random_gaussians):
    wxyz = [math.cos(0.4), math.sin(0.4) * 0.6, 0.0, math.sin(0.4) * 0.8]
    rot = quats_to_rotmats(torch.tensor(wxyz))
    mask = torch.ones(len(random_gaussians), dtype=torch.bool)
    out = rotate(random_gaussians, mask, wxyz, [0.3, -0.2, 0.1])
    camera = torch.tensor([4.0, 1.0, -3.0])
    dirs = random_gaussians.means - camera  # camera -> splat
    new_camera = (camera - torch.tensor([0.3, -0.2, 0.1])) @ rot.T + torch.tensor([0.3, -0.2, 0.1])
    new_dirs = out.means - new_camera
    assert torch.allclose(eval_sh(out.sh, new_dirs), eval_sh(random_gaussians.sh, dirs), atol=1e-4)

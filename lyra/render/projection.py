"""EWA projection of 3D Gaussians to screen space, in the conventions of gsplat.

For a camera with world-to-camera ``[R | t]`` and intrinsics ``K``:

* camera-space mean ``m = R mu + t``, covariance ``S = R Sigma R^T``;
* the perspective Jacobian ``J`` is evaluated at ``m`` with x/z and y/z
  clamped to 1.3x the image's half-extent (gsplat does this so splats far
  off-screen do not get huge footprints);
* ``cov2d = J S J^T + eps2d * I`` with ``eps2d = 0.3`` px^2 (the low-pass
  filter); with ``antialiased=True`` the opacity is multiplied by
  ``sqrt(det(cov2d - eps2d I) / det(cov2d))`` (gsplat's "antialiased" mode);
* a splat contributes to a pixel only while ``alpha = o * exp(-q / 2) >= 1/255``,
  so its screen extent along x is ``sqrt(2 ln(255 o) * cov2d_xx)`` (at most
  3.33 sigma, gsplat's bound), likewise y;
* splats with depth outside ``(near, far)``, a degenerate ``cov2d``,
  ``o < 1/255`` or an extent box entirely off-screen are culled.

Everything here is differentiable w.r.t. the Gaussian parameters (the
discrete visibility decision is made under ``no_grad``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from lyra.scene.gaussians import quats_to_rotmats

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
TRANSMITTANCE_MIN = 1e-4
EPS_2D = 0.3


class Projected(NamedTuple):
    """Screen-space splats for one camera (all ``[N, ...]``; culled ones have ``visible`` False)."""

    means2d: Tensor  # [N, 2] pixels
    conics: Tensor  # [N, 3] inverse cov2d (a, b, c): q = a dx^2 + 2 b dx dy + c dy^2
    depths: Tensor  # [N] camera z
    opacities: Tensor  # [N] (times the antialiasing compensation when enabled)
    extents: Tensor  # [N, 2] half-size in pixels of the box where alpha >= 1/255
    visible: Tensor  # [N] bool


def _screen_factors(
    quats: Tensor,  # [N, 4]
    scales: Tensor,  # [N, 3]
    jac_cam: Tensor,  # [N, 2, 3] perspective Jacobian times the camera rotation
) -> tuple[Tensor, Tensor]:
    """Rows of ``T = J R_cam R diag(s)`` (``[N, 3]`` each), so that ``cov2d = T T^T``.

    Written as products of ``[N, 3]`` columns rather than ``[N, 3, 3]`` batched
    matmuls (3x3 bmm is several times slower on CPU; 1M splats: ~100 ms less).
    """
    rot = quats_to_rotmats(quats)  # [N, 3, 3]
    r0, r1, r2 = rot.unbind(-2)  # rows of R, each [N, 3]
    rows = []
    for j in jac_cam.unbind(-2):  # each [N, 3]
        rows.append((j[:, 0:1] * r0 + j[:, 1:2] * r1 + j[:, 2:3] * r2) * scales)
    return rows[0], rows[1]


def project_gaussians(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3]
    opacities: Tensor,  # [N]
    w2c: Tensor,  # [4, 4]
    intrinsics: Tensor,  # [4] (fx, fy, cx, cy)
    width: int,
    height: int,
    *,
    near: float = 0.01,
    far: float = 1e10,
    eps2d: float = EPS_2D,
    antialiased: bool = False,
) -> Projected:
    """Project Gaussians for one camera; see the module docstring."""
    rot_cam, trans = w2c[:3, :3], w2c[:3, 3]
    means_c = means @ rot_cam.T + trans
    fx, fy, cx, cy = intrinsics.unbind(-1)
    tx, ty, tz = means_c.unbind(-1)
    z_safe = torch.where(tz.abs() > 1e-12, tz, torch.full_like(tz, 1e-12))
    lim_x_pos = (width - cx) / fx + 0.3 * (0.5 * width / fx)
    lim_x_neg = cx / fx + 0.3 * (0.5 * width / fx)
    lim_y_pos = (height - cy) / fy + 0.3 * (0.5 * height / fy)
    lim_y_neg = cy / fy + 0.3 * (0.5 * height / fy)
    jx = z_safe * torch.clamp(tx / z_safe, -lim_x_neg, lim_x_pos)
    jy = z_safe * torch.clamp(ty / z_safe, -lim_y_neg, lim_y_pos)
    # J = [[fx/z, 0, -fx jx/z^2], [0, fy/z, -fy jy/z^2]]; J R_cam from its non-zero entries.
    inv_z = 1.0 / z_safe
    jz_x, jz_y = (-fx * jx * inv_z * inv_z).unsqueeze(-1), (-fy * jy * inv_z * inv_z).unsqueeze(-1)
    jac_cam = torch.stack(
        [
            (fx * inv_z).unsqueeze(-1) * rot_cam[0] + jz_x * rot_cam[2],
            (fy * inv_z).unsqueeze(-1) * rot_cam[1] + jz_y * rot_cam[2],
        ],
        dim=-2,
    )  # [N, 2, 3]
    t0, t1 = _screen_factors(quats, scales, jac_cam)
    c_xx, c_xy, c_yy = (t0 * t0).sum(-1), (t0 * t1).sum(-1), (t1 * t1).sum(-1)  # cov2d = T T^T
    det_raw = c_xx * c_yy - c_xy * c_xy
    c_xx, c_yy = c_xx + eps2d, c_yy + eps2d
    det = c_xx * c_yy - c_xy * c_xy
    det_safe = det.clamp_min(1e-10)
    conics = torch.stack([c_yy / det_safe, -c_xy / det_safe, c_xx / det_safe], dim=-1)
    opac = opacities
    if antialiased:
        opac = opac * torch.sqrt(torch.clamp(det_raw / det_safe, min=0.0))
    means2d = torch.stack([fx * tx / z_safe + cx, fy * ty / z_safe + cy], dim=-1)

    with torch.no_grad():
        level = 2.0 * torch.log(torch.clamp(opac * 255.0, min=1.0))  # q threshold for alpha >= 1/255
        extents = torch.stack([torch.sqrt(level * c_xx.clamp_min(0)), torch.sqrt(level * c_yy.clamp_min(0))], -1)
        visible = (det > 0) & (tz > near) & (tz < far) & (opac >= ALPHA_MIN)
        visible &= torch.isfinite(means2d).all(-1) & torch.isfinite(conics).all(-1)
        visible &= (means2d[:, 0] + extents[:, 0] > 0) & (means2d[:, 0] - extents[:, 0] < width)
        visible &= (means2d[:, 1] + extents[:, 1] > 0) & (means2d[:, 1] - extents[:, 1] < height)
    return Projected(means2d, conics, tz, opac, extents, visible)


def max_extent_sigmas() -> float:
    """The largest extent in standard deviations (opacity 1): sqrt(2 ln 255) ~ 3.33."""
    return math.sqrt(2.0 * math.log(255.0))

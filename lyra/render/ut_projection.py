"""Unscented-transform (UT) projection of 3D Gaussians, gsplat's 3DGUT rules, pinhole camera.

Used by 3DGUT rendering (``with_ut=True``) for culling and tile binning; with
``with_eval3d`` the pixels then evaluate each Gaussian in 3D (:mod:`lyra.render.eval3d`).

Rules (gsplat ``ProjectionUT3DGSFused.cu`` / ``Cameras.cuh``, global shutter, no distortion):

* sigma points ``mu`` and ``mu +- sqrt(3 + lambda) s_i R[:, i]`` (the columns of
  the rotation, so the covariance's closed-form SVD), ``lambda = a^2 (3 + k) - 3``
  with ``a = 0.1, k = 0``; mean weights ``lambda / (3 + lambda)`` and
  ``1 / (2 (3 + lambda))``, covariance weight of the centre point
  ``lambda / (3 + lambda) + 1 - a^2 + b`` with ``b = 2``;
* each point through the ideal pinhole; a point with ``z <= 0`` projects to the
  pixel origin and is invalid, a point outside the image grown by 10% per side
  (``in_image_margin_factor``) is invalid; the projection is kept when at
  least one point is valid (``require_all_sigma_points_valid = False``);
* 2D mean and covariance are the weighted sample mean / covariance of the 7
  image points; the centre's camera depth must lie in ``[near, far]``;
* then as gsplat's EWA path: ``+ eps2d`` blur (optional antialiasing
  compensation), ``det > 0``, ``o >= 1/255``, and the extent
  ``ceil(min(e sqrt(cov_xx), e sqrt(lambda_max)))`` (likewise y) with
  ``e = min(3.33, sqrt(2 ln(255 o)))``; boxes wholly off-screen are culled.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lyra.render.projection import ALPHA_MIN, EPS_2D, Projected
from lyra.scene.gaussians import quats_to_rotmats

UT_ALPHA = 0.1
UT_BETA = 2.0
UT_KAPPA = 0.0
IN_IMAGE_MARGIN_FACTOR = 0.1
REQUIRE_ALL_SIGMA_POINTS_VALID = False
MAX_EXTENT_SIGMAS = 3.33  # gsplat's cap on the box half-size, in standard deviations


def sigma_point_weights(dim: int = 3) -> tuple[float, float, float, float]:
    """``(spread, w_mean_0, w_cov_0, w_i)``: the UT constants (spread = ``sqrt(dim + lambda)``)."""
    lam = UT_ALPHA**2 * (dim + UT_KAPPA) - dim
    w_mean0 = lam / (dim + lam)
    return math.sqrt(dim + lam), w_mean0, w_mean0 + 1.0 - UT_ALPHA**2 + UT_BETA, 1.0 / (2.0 * (dim + lam))


def project_gaussians_ut(
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
    """Project Gaussians for one camera by the unscented transform; see the module docstring.

    Differentiable where it is smooth (the validity tests run under ``no_grad``).
    Extents are whole pixels, as gsplat's radii.
    """
    spread, w_mean0, w_cov0, w_side = sigma_point_weights()
    rot_cam, trans = w2c[:3, :3], w2c[:3, 3]
    fx, fy, cx, cy = intrinsics.unbind(-1)
    n = len(means)
    # [.., N] rows throughout ("structure of arrays"): reductions over the 7 sigma points are adds
    # of contiguous rows, and the camera-space axes one small matmul (see eval3d.ray_coefficients).
    center = rot_cam @ means.T + trans[:, None]  # [3, N] camera space
    rot = quats_to_rotmats(quats).permute(1, 2, 0).reshape(3, 3 * n)  # [3 (row), 3 (axis i) * N]
    axes = (rot_cam @ rot).reshape(3, 3, n) * (scales.T * spread)  # [3 (coordinate), 3 (axis i), N]
    x, y, z = (torch.cat([c[None], c + a, c - a]) for c, a in zip(center, axes, strict=True))  # [7, N] each
    in_front = z > 0
    inv_z = 1.0 / torch.where(in_front, z, torch.ones_like(z))
    zero = x.new_zeros(())
    u = torch.where(in_front, fx * x * inv_z + cx, zero)  # [7, N]; gsplat: a point behind -> the origin
    v = torch.where(in_front, fy * y * inv_z + cy, zero)
    with torch.no_grad():
        mx, my = IN_IMAGE_MARGIN_FACTOR * width, IN_IMAGE_MARGIN_FACTOR * height
        point_ok = in_front & (u >= -mx) & (u < width + mx) & (v >= -my) & (v < height + my)
        ut_ok = point_ok.all(0) if REQUIRE_ALL_SIGMA_POINTS_VALID else point_ok.any(0)
    # Weighted mean relative to the centre point (the weights sum to 1; this cancels less than
    # sum(w_i p_i) with w_0 = -99 in float32).
    mean_u = u[0] + w_side * (u[1:] - u[0]).sum(0)  # [N]
    mean_v = v[0] + w_side * (v[1:] - v[0]).sum(0)
    du, dv = u - mean_u, v - mean_v  # [7, N]
    c_xx = w_cov0 * du[0] ** 2 + w_side * (du[1:] ** 2).sum(0)
    c_xy = w_cov0 * du[0] * dv[0] + w_side * (du[1:] * dv[1:]).sum(0)
    c_yy = w_cov0 * dv[0] ** 2 + w_side * (dv[1:] ** 2).sum(0)
    mean2d = torch.stack([mean_u, mean_v], -1)  # [N, 2]
    tz = center[2]
    det_raw = c_xx * c_yy - c_xy * c_xy
    c_xx, c_yy = c_xx + eps2d, c_yy + eps2d
    det = c_xx * c_yy - c_xy * c_xy
    det_safe = torch.where(det > 0, det, torch.ones_like(det))
    conics = torch.stack([c_yy / det_safe, -c_xy / det_safe, c_xx / det_safe], dim=-1)
    opac = opacities
    if antialiased:
        opac = opac * torch.sqrt(torch.clamp(det_raw / det_safe, min=0.0))

    with torch.no_grad():
        extend = torch.sqrt(2.0 * torch.log(torch.clamp(opac / ALPHA_MIN, min=1.0))).clamp_max(MAX_EXTENT_SIGMAS)
        half_trace = 0.5 * (c_xx + c_yy)
        lam_max = half_trace + torch.sqrt(torch.clamp(half_trace * half_trace - det, min=0.01))
        r_max = extend * torch.sqrt(lam_max.clamp_min(0))
        radius_x = torch.ceil(torch.minimum(extend * torch.sqrt(c_xx.clamp_min(0)), r_max))
        radius_y = torch.ceil(torch.minimum(extend * torch.sqrt(c_yy.clamp_min(0)), r_max))
        extents = torch.stack([radius_x, radius_y], -1)  # [N, 2]
        visible = ut_ok & (tz >= near) & (tz <= far) & (det > 0) & (opac >= ALPHA_MIN)
        visible &= torch.isfinite(mean2d).all(-1) & torch.isfinite(conics).all(-1) & ((radius_x > 0) | (radius_y > 0))
        visible &= (mean2d[:, 0] + radius_x > 0) & (mean2d[:, 0] - radius_x < width)
        visible &= (mean2d[:, 1] + radius_y > 0) & (mean2d[:, 1] - radius_y < height)
    return Projected(mean2d, conics, tz, opac, extents, visible)

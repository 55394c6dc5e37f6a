"""Per-pixel 3D evaluation of Gaussians along camera rays (gsplat's ``with_eval3d``), vectorised.

gsplat's rule (``RasterizeToPixelsFromWorld3DGSFwd.cu``): for the ray ``o + t d``
through a pixel centre, with ``M = S^-1 R^T`` (whitening of the Gaussian),
``dist^2 = |normalize(M d) x M (o - mu)|^2`` and
``alpha = min(0.999, opacity * exp(-dist^2 / 2))``.

The tile rasterizer needs this as cheap arithmetic over ``[tiles, splats,
pixels]`` blocks, so it is rewritten (exactly) as a ratio of two quadratics
in the pixel position. In camera space (``m`` the mean, ``r_i`` the Gaussian's
axes, ``d = ((u - cx) / fx, (v - cy) / fy, 1)``), with ``(Ma) x (Mb) = det(M)
M^-T (a x b)``:

    dist^2 = sum_i (s_i d.(m x r_i))^2 / sum_i ((s_j s_k) d.r_i)^2      ({i, j, k} = {0, 1, 2})

Numerator and denominator are each a sum of three squared linear forms in
``(u, v)``. The rasterizer expands them per (tile, splat) around the tile
centre (as it does the EWA conic), and evaluates both with one matmul.
Scales are divided by their largest before use (the ratio is unchanged when
the numerator forms also carry ``1 / s_max``), which keeps float32 products of
small scales far from underflow.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lyra.scene.gaussians import quats_to_rotmats

NUM_COLUMNS = 24  # per-splat: alpha (6), beta (6), gamma0 (6), x^2 (2), xy (2), y^2 (2)
MIN_RELATIVE_SCALE = 1e-6  # floor on s_i / s_max: keeps the denominator positive for flat splats


def ray_coefficients(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3]
    w2c: Tensor,  # [4, 4]
    intrinsics: Tensor,  # [4] (fx, fy, cx, cy)
) -> Tensor:  # [N, NUM_COLUMNS]
    """Per-splat coefficients of the six linear forms (3 numerator, 3 denominator).

    Form ``f`` at pixel ``(u, v)`` is ``alpha_f u + beta_f v + gamma0_f``; the
    last six columns are the pixel-independent quadratic parts ``sum alpha^2``,
    ``2 sum alpha beta``, ``sum beta^2`` of the numerator and the denominator.
    Differentiable in all inputs.
    """
    rot_cam, trans = w2c[:3, :3], w2c[:3, 3]
    fx, fy, cx, cy = intrinsics.unbind(-1)
    center = means @ rot_cam.T + trans  # [N, 3]
    axes = (rot_cam @ quats_to_rotmats(quats)).transpose(-1, -2)  # [N, 3 (axis i), 3] rows r_i
    s_max = scales.amax(-1, keepdim=True)  # [N, 1]
    rel = torch.clamp_min(scales / s_max, MIN_RELATIVE_SCALE)  # [N, 3]
    others = torch.stack([rel[:, 1] * rel[:, 2], rel[:, 0] * rel[:, 2], rel[:, 0] * rel[:, 1]], -1)  # s_j s_k
    numer = torch.linalg.cross(center.unsqueeze(1).expand_as(axes), axes, dim=-1) * (rel / s_max).unsqueeze(-1)
    denom = axes * others.unsqueeze(-1)
    forms = torch.cat([numer, denom], 1)  # [N, 6, 3] coefficients on d
    alpha = forms[..., 0] / fx
    beta = forms[..., 1] / fy
    gamma0 = forms[..., 2] - alpha * cx - beta * cy  # [N, 6]
    pair = lambda t: t.reshape(-1, 2, 3).sum(-1)  # noqa: E731  [N, 6] -> [N, 2] (numerator, denominator)
    return torch.cat([alpha, beta, gamma0, pair(alpha * alpha), 2.0 * pair(alpha * beta), pair(beta * beta)], -1)


def ray_exponent(
    rows: Tensor,  # [A, K, >= 5 + NUM_COLUMNS] (mx, my, rx, ry, log o, ray coefficients, ...)
    origin: Tensor,  # [A, 2] tile centres in pixels
    valid: Tensor,  # [A, K]
    monomials: Tensor,  # [6, P] (x^2, xy, y^2, x, y, 1) in tile-local coordinates
    local: Tensor,  # [T] tile-local pixel-centre coordinates along one axis (P = T * T, row-major)
) -> Tensor:  # [A, K, P]
    """``log(opacity) - dist^2 / 2`` over a ``[tiles, splats, pixels]`` block; ``-inf`` outside a
    splat's screen box ``|p - mean2d| <= extent`` (gsplat evaluates a splat only where its box
    reaches) and for padding slots."""
    num, k = rows.shape[:2]
    tiles_side = local.shape[0]
    coef = rows[..., 5 : 5 + NUM_COLUMNS]
    alpha, beta, gamma0 = coef[..., 0:6], coef[..., 6:12], coef[..., 12:18]
    ox, oy = origin[:, 0, None, None], origin[:, 1, None, None]
    gamma = torch.addcmul(torch.addcmul(gamma0, alpha, ox), beta, oy)  # [A, K, 6] forms at the tile centre
    pair = lambda t: t.reshape(num, k, 2, 3).sum(-1)  # noqa: E731  [A, K, 6] -> [A, K, 2]
    quad = torch.stack(
        [coef[..., 18:20], coef[..., 20:22], coef[..., 22:24], 2.0 * pair(alpha * gamma), 2.0 * pair(beta * gamma),
         pair(gamma * gamma)], -1,
    )  # [A, K, 2, 6]
    values = quad.transpose(1, 2).reshape(num, 2 * k, 6) @ monomials  # [A, 2K, P]
    numer, denom = values[:, :k], values[:, k:]
    with torch.no_grad():
        dx0 = (rows[..., 0] - origin[:, None, 0]).unsqueeze(-1)  # [A, K, 1] mean relative to the tile centre
        dy0 = (rows[..., 1] - origin[:, None, 1]).unsqueeze(-1)
        out_x = (local - dx0).abs_() > rows[..., 2:3]  # [A, K, T]
        out_y = ((local - dy0).abs_() > rows[..., 3:4]) | ~valid.unsqueeze(-1)
        zero = rows.new_zeros(())
        pen_x = torch.where(out_x, -torch.inf, zero).unsqueeze(-2)  # [A, K, 1, T]
        pen_y = torch.where(out_y, -torch.inf, zero).unsqueeze(-1)  # [A, K, T, 1]
    base = (rows[..., 4, None, None] + pen_y) + pen_x  # [A, K, T, T]
    return base.reshape(num, k, tiles_side * tiles_side).addcdiv_(numer, denom, value=-0.5)

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

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from lyra.scene.gaussians import quats_to_rotmats

NUM_COLUMNS = 12  # per splat, (numerator, denominator) pairs of: S_aa, S_ab, S_bb, S_ag, S_bg, S_gg
MIN_RELATIVE_SCALE = 1e-6  # floor on s_i / s_max: keeps the denominator positive for flat splats


def ray_coefficients(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3]
    w2c: Tensor,  # [4, 4]
    intrinsics: Tensor,  # [4] (fx, fy, cx, cy)
    expand_at: Tensor,  # [N, 2] pixel around which the quadratics are expanded (the box centre)
    opacities: Tensor,  # [N], folded into the numerator (see below)
) -> Tensor:  # [N, NUM_COLUMNS]
    """Per-splat coefficients of the numerator and denominator quadratics of ``dist^2``.

    Each is a sum of three squared linear forms ``a_f du + b_f dv + g_f`` in the
    pixel offset ``(du, dv)`` from ``expand_at``; the columns are the
    (numerator, denominator) pairs of ``S_aa = sum a^2``, ``S_ab = sum a b``,
    ``S_bb``, ``S_ag``, ``S_bg``, ``S_gg``, so that
    ``Q = S_aa du^2 + 2 S_ab du dv + S_bb dv^2 + 2 S_ag du + 2 S_bg dv + S_gg``.
    Expanding near the splat keeps the float32 cancellation at the level of
    the EWA conic's. The numerator is ``N - 2 log(o) D``, so
    that ``N / D`` is ``-2`` times the whole exponent ``log(o) - dist^2 / 2``
    (both terms are >= 0: no cancellation). Differentiable in all inputs except ``expand_at``.
    """
    # Everything as [.., N] rows ("structure of arrays"): sums over 3 forms are adds of contiguous
    # rows and the camera rotation one small matmul, where [N, 3] layouts reduce over a
    # 3-element last dimension (1M splats: ~300 -> ~100 ms on one CPU thread).
    rot_cam, trans = w2c[:3, :3], w2c[:3, 3]
    fx, fy, cx, cy = intrinsics.unbind(-1)
    n = len(means)
    center = rot_cam @ means.T + trans[:, None]  # [3, N] camera space
    rot = quats_to_rotmats(quats).permute(1, 2, 0).reshape(3, 3 * n)  # [3 (row j), 3 (axis i) * N]
    axes = (rot_cam @ rot).reshape(3, 3, n)  # [3 (coordinate c), 3 (axis i), N]: axis i in camera space
    scales_t = scales.T  # [3, N]
    s_max = scales_t.amax(0)  # [N]
    rel = torch.clamp_min(scales_t / s_max, MIN_RELATIVE_SCALE)  # [3, N]
    others = torch.stack([rel[1] * rel[2], rel[0] * rel[2], rel[0] * rel[1]])  # [3, N] s_j s_k
    weight = rel / s_max  # [3, N]
    mx, my, mz = center  # [N] each
    ax, ay, az = axes  # [3, N] each
    # Coefficients on d = (dx, dy, 1) of the numerator forms s_i (m x r_i) / s_max^2 (rows 0-2)
    # and the denominator forms (s_j s_k) r_i (rows 3-5).
    form_x = torch.cat([(my * az - mz * ay) * weight, ax * others])  # [6, N]
    form_y = torch.cat([(mz * ax - mx * az) * weight, ay * others])
    form_z = torch.cat([(mx * ay - my * ax) * weight, az * others])
    at = expand_at.detach().to(means.dtype).T  # [2, N]
    a = form_x / fx
    b = form_y / fy
    g = form_z + a * (at[0] - cx) + b * (at[1] - cy)  # [6, N] the forms at expand_at
    out = means.new_empty(6, 2, n)  # [6 sums, 2 (numerator, denominator), N]
    for row, (u, v) in enumerate(((a, a), (a, b), (b, b), (a, g), (b, g), (g, g))):
        prod = (u * v).reshape(2, 3, n)
        out[row] = prod[:, 0] + prod[:, 1] + prod[:, 2]  # adds of contiguous rows, not a 3-wide reduction
    log_o = torch.log(opacities.clamp_min(1e-30))
    sums = torch.stack([out[:, 0] - 2.0 * log_o * out[:, 1], out[:, 1]], 1)  # numerator N - 2 log(o) D
    return sums.reshape(NUM_COLUMNS, n).T  # [N, 12]: (sum, numerator/denominator) pairs


class BoxTables(NamedTuple):
    """Per-tile-size constants for the screen-box cut in :func:`ray_exponent`."""

    tile: int
    penalties: Tensor | None  # [(T+1)^4, T*T] 0 inside / BOX_PENALTY outside, by (y range, x range) code


BOX_PENALTY = -1e4  # added to the exponent outside a splat's box (then floored: alpha 0, finite gradients)
_MAX_TABLE_TILE = 8  # (T+1)^4 * T^2 entries: 1.7 MB at T = 8, too many at 16 (falls back to broadcasting)


@functools.lru_cache(maxsize=8)
def box_tables(tile: int, dtype: torch.dtype, device: torch.device) -> BoxTables:
    """Constants for :func:`ray_exponent` at this tile size.

    A splat's box covers, along each axis of a tile, a range ``lo <= t < hi``
    of pixel indices (``0 <= lo, hi <= T``): ``(T+1)^2`` codes per axis. The
    penalty of every pixel for a (y code, x code) pair is tabulated once, so
    a block's penalties are one row gather instead of a broadcast outer sum
    (measured ~3x cheaper on CPU). Cached: the table is read-only.
    """
    if tile > _MAX_TABLE_TILE:
        return BoxTables(tile, None)
    bounds = torch.arange(tile + 1, device=device)
    t = torch.arange(tile, device=device)
    inside_1d = (bounds[:, None, None] <= t) & (t < bounds[None, :, None])  # [lo, hi, T]
    inside_1d = inside_1d.reshape(-1, tile)  # [(T+1)^2, T]
    inside = inside_1d[:, None, :, None] & inside_1d[None, :, None, :]  # [y code, x code, T_y, T_x]
    penalties = torch.where(inside, 0.0, BOX_PENALTY).to(dtype).reshape(-1, tile * tile)
    return BoxTables(tile, penalties)


def ray_exponent(
    rows: Tensor,  # [A, K, >= 4 + NUM_COLUMNS] (mx, my, rx, ry, ray coefficients with log o folded in, ...)
    origin: Tensor,  # [A, 2] tile centres in pixels
    valid: Tensor,  # [A, K]
    monomials: Tensor,  # [6, P] (x^2, xy, y^2, x, y, 1) in tile-local coordinates
    tables: BoxTables,
) -> Tensor:  # [A, K, P]
    """``log(opacity) - dist^2 / 2`` over a ``[tiles, splats, pixels]`` block, and at most
    ``BOX_PENALTY`` outside a splat's screen box ``|p - mean2d| <= extent`` (gsplat evaluates a
    splat only where its box reaches) and for padding slots.

    The quadratics are expanded at ``(mx, my)``; ``log o`` is in the numerator (``N - 2 log(o) D``,
    :func:`ray_coefficients`) so that the exponent is one ``addcdiv`` of
    contiguous blocks."""
    num, k = rows.shape[:2]
    tile = tables.tile
    s_aa, s_ab, s_bb, s_ag, s_bg, s_gg = rows[..., 4 : 4 + NUM_COLUMNS].reshape(num, k, 6, 2).unbind(-2)  # [A, K, 2]
    dx = (origin[:, None, 0] - rows[..., 0]).unsqueeze(-1)  # [A, K, 1] tile centre relative to the splat
    dy = (origin[:, None, 1] - rows[..., 1]).unsqueeze(-1)
    lin_x = s_aa * dx + s_ab * dy + s_ag  # half the coefficients of the tile-local x and y
    lin_y = s_ab * dx + s_bb * dy + s_bg
    const = (lin_x + s_ag) * dx + (lin_y + s_bg) * dy + s_gg
    quad = torch.stack([s_aa, 2.0 * s_ab, s_bb, 2.0 * lin_x, 2.0 * lin_y, const], -1)  # [A, K, 2, 6]
    coef = quad.transpose(1, 2).reshape(num, 2 * k, 6)  # [A, 2K, 6]: numerators, then denominators
    with torch.no_grad():
        # Pixel index range [lo, hi) of the box along each axis of the tile (pixel t sits at local[t]).
        shift = torch.cat([dx, dy], -1).neg_().add_(0.5 * tile - 0.5)  # [A, K, 2] mean in pixel-index units
        radius = rows[..., 2:4]
        lo = torch.ceil(shift - radius).clamp_(0, tile)
        hi = torch.floor(shift + radius).add_(1).clamp_(0, tile)
        codes = (lo * (tile + 1) + hi).long()  # [A, K, 2] (x code, y code)
        code = codes[..., 1] * (tile + 1) ** 2 + codes[..., 0]
        code = torch.where(valid, code, code.new_full((), tile * (tile + 1)))  # lo = T, hi = 0: empty
        if tables.penalties is not None:
            base = tables.penalties.index_select(0, code.reshape(-1)).reshape(num, k, tile * tile)
        else:
            t = torch.arange(tile, device=rows.device)
            out = (t < lo.unsqueeze(-1)) | (t >= hi.unsqueeze(-1)) | ~valid[..., None, None]  # [A, K, 2, T]
            pen = torch.where(out, BOX_PENALTY, 0.0).to(rows.dtype)
            base = (pen[:, :, 1, :, None] + pen[:, :, 0, None, :]).reshape(num, k, tile * tile)
    if torch.is_grad_enabled() and coef.requires_grad:
        return _QuotientExponent.apply(coef, base, monomials)
    values = coef @ monomials  # [A, 2K, P]
    return torch.addcdiv(base, values[:, :k], values[:, k:], value=-0.5)


class _QuotientExponent(torch.autograd.Function):
    """``base - N / (2 D)`` with ``[N; D] = coef @ monomials``, saving only ``coef`` for backward.

    Autograd through matmul + addcdiv would keep the two ``[A, K, P]`` blocks N and D;
    recomputing them from ``coef`` (one small matmul) keeps 3DGUT's saved memory per block
    equal to the EWA path's, so both cross the recompute budget at the same scene size.
    """

    @staticmethod
    def forward(ctx, coef, base, monomials):
        ctx.save_for_backward(coef, monomials)
        k = coef.shape[1] // 2
        values = coef @ monomials
        return torch.addcdiv(base, values[:, :k], values[:, k:], value=-0.5)

    @staticmethod
    def backward(ctx, grad):
        coef, monomials = ctx.saved_tensors
        k = coef.shape[1] // 2
        values = coef @ monomials  # [A, 2K, P]
        numer, denom = values[:, :k], values[:, k:]
        # d/dN = -1 / (2 D), d/dD = N / (2 D^2): both from g / D; the factors -1/2 and 1/2 are
        # applied to the small [A, 2K, 6] result instead of the blocks.
        ratio = torch.empty_like(values)
        torch.div(grad, denom, out=ratio[:, :k])
        torch.mul(ratio[:, :k], numer, out=ratio[:, k:]).div_(denom)
        grad_coef = ratio @ monomials.T  # [A, 2K, 6]
        grad_coef[:, :k].mul_(-0.5)
        grad_coef[:, k:].mul_(0.5)
        return grad_coef, None, None

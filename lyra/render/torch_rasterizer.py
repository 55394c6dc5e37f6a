"""A tile-based Gaussian rasterizer in pure PyTorch: runs on CPU, differentiable.

Hand-written because no maintained CPU rasterizer with autograd exists for
PyTorch (gsplat's kernels are CUDA only and its pure-PyTorch reference path
bins tiles with a Python loop per splat and needs CUDA for its pixel lists);
bench/render.py measures it against the fastest CPU peer we could install.

Algorithm (gsplat's conventions, see :mod:`lyra.render.projection`):

1. project every splat (vectorized) and find the square tiles (8x8 by default) its alpha >= 1/255
   box touches;
2. build the (tile, depth)-sorted intersection list: sort splats by depth once,
   expand each into its tiles, stable-sort by tile id;
3. composite tiles in batches, front to back, in chunks of splats. The
   Gaussian exponent of a splat over a tile's pixels is a quadratic in the
   pixel's tile-local coordinates, so a whole ``[tiles, splats, pixels]``
   block of exponents is one batched matmul. Transmittance is carried in log
   space (cumsum of ``log(1 - alpha)``), which is cheaper than cumprod and has
   a simple backward. A pixel stops (as in gsplat) at the first splat that
   would bring its transmittance below 1e-4, which is not added; tiles whose
   pixels have all stopped leave the batch.

Memory is bounded by ``max_block`` elements per ``[tiles, splats, pixels]``
block; no ``[N, H, W]`` tensor is ever built.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from lyra.render.eval3d import box_tables, ray_exponent
from lyra.render.projection import ALPHA_MAX, ALPHA_MIN, TRANSMITTANCE_MIN, Projected

DEFAULT_TILE = 8  # 8x8 tiles: less padded work per splat than 16x16 on CPU (bench/render.py)
DEFAULT_MAX_BLOCK = 1 << 20  # elements per [tiles, splats, pixels] block (~4 MiB float32: stays in cache)
DEFAULT_MAX_INTERSECTIONS = 1 << 22  # (tile, splat) pairs per band of tile rows
RECOMPUTE_ABOVE_BYTES = 256 << 20  # autograd memory per band above which blocks are recomputed in backward
_LOG_T_MIN = math.log(TRANSMITTANCE_MIN)
# Exponents are floored before exp: results below exp(-87) (float32 denormals and underflow, most
# of a block far from a splat's centre) take a slow path in the vectorised exp, 20-50x slower per
# element on CPU; anything below exp(-30) is cut to 0 by the 1/255 alpha threshold anyway.
_EXPONENT_FLOOR = -30.0


def tile_ranges(projected: Projected, width: int, height: int, tile: int = DEFAULT_TILE):
    """Visible splats nearest first and their inclusive tile boxes: ``(ids [V], lo [V, 2], hi [V, 2])``."""
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    with torch.no_grad():
        ids = torch.nonzero(projected.visible).squeeze(-1)
        depths = projected.depths.detach().index_select(0, ids)
        if depths.is_floating_point() and depths.dtype.itemsize in (4, 8) and bool((depths > 0).all()):
            # Positive IEEE floats order like their bit patterns: an integer sort is ~9x faster on CPU
            # than a float one (1M splats: 13 ms vs 113 ms) and gives the same order.
            depths = depths.view(torch.int32 if depths.dtype.itemsize == 4 else torch.long)
        ids = ids.index_select(0, torch.argsort(depths, stable=True))
        center = projected.means2d.detach().index_select(0, ids)
        ext = projected.extents.index_select(0, ids)
        # Tiles whose pixel centres (p + 0.5) can fall inside the box [c - e, c + e].
        lo = torch.floor((center - ext - 0.5) / tile).clamp_min(0).long()
        hi = torch.floor((center + ext - 0.5) / tile).long()
        hi[:, 0].clamp_(max=tiles_x - 1)
        hi[:, 1].clamp_(max=tiles_y - 1)
    return ids, lo, hi


def tile_intersections(
    projected: Projected, width: int, height: int, tile: int = DEFAULT_TILE, rows: tuple[int, int] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Sorted intersections: ``(splat_ids [M], tile_offsets [T+1], tiles_x)``.

    ``splat_ids[tile_offsets[t]:tile_offsets[t+1]]`` are the splats touching
    tile ``t`` (row-major), nearest first. ``rows = (r0, r1)`` restricts to the
    band of tile rows ``r0 <= row < r1`` (tiles then count from row ``r0``).
    """
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    ids, lo, hi = tile_ranges(projected, width, height, tile)
    splat_ids, offsets = _intersections(ids, lo, hi, tiles_x, rows or (0, tiles_y))
    return splat_ids, offsets, tiles_x


def _intersections(ids: Tensor, lo: Tensor, hi: Tensor, tiles_x: int, rows: tuple[int, int]):
    """``(splat_ids [M], offsets [T+1])`` for the tiles in the band of rows ``rows``."""
    r0, r1 = rows
    num_tiles = (r1 - r0) * tiles_x
    device = ids.device
    with torch.no_grad():
        lo, hi = lo.clone(), hi.clone()
        lo[:, 1].clamp_(min=r0)
        hi[:, 1].clamp_(max=r1 - 1)
        span = (hi - lo + 1).clamp_min(0)
        counts = span[:, 0] * span[:, 1]
        keep = torch.nonzero(counts > 0).squeeze(-1)
        ids, lo, span, counts = (t.index_select(0, keep) for t in (ids, lo, span, counts))
        total = int(counts.sum())
        # Index maths in int32 and the sort on the narrowest integer type that holds the tile ids:
        # both about 2x faster than int64 on CPU (bench/render.py, 1M splats).
        index = torch.int32 if total < 2**31 and len(ids) < 2**31 else torch.long
        key = torch.int16 if num_tiles <= torch.iinfo(torch.int16).max else index
        counts = counts.to(index)
        # owner[i]: the splat (row of ids) of intersection i. One repeat_interleave of the counts and
        # cheap gathers by owner are ~10x faster than repeat_interleave of each per-splat value.
        owner = torch.repeat_interleave(counts, output_size=total)  # [M]
        expand = lambda values: values.to(index).index_select(0, owner)  # noqa: E731
        local = torch.arange(total, dtype=index, device=device) - expand(torch.cumsum(counts, 0, dtype=index) - counts)
        width = span[:, 0].to(index)
        first_tile = ((lo[:, 1] - r0) * tiles_x + lo[:, 0]).to(index)
        # tile = first + (local // width) * tiles_x + local % width, with local % width = local - q * width.
        q = torch.div(local, expand(width), rounding_mode="floor")
        tile_ids = local.add_(expand(first_tile)).add_(q.mul_(expand(tiles_x - width)))
        del q
        order = torch.argsort(tile_ids.to(key), stable=True)
        splat_ids = ids.to(index).index_select(0, owner.index_select(0, order))
        offsets = torch.zeros(num_tiles + 1, dtype=torch.long, device=device)
        offsets[1:] = torch.cumsum(torch.bincount(tile_ids, minlength=num_tiles), 0)
    return splat_ids, offsets


def _row_bands(lo: Tensor, hi: Tensor, tiles_y: int, max_intersections: int) -> list[tuple[int, int]]:
    """Split tile rows into bands of at most ~max_intersections intersections each."""
    with torch.no_grad():
        span = (hi - lo + 1).clamp_min(0)
        # Intersections per tile row: each splat adds span_x to every row it covers.
        per_row = torch.zeros(tiles_y + 1, dtype=torch.long, device=lo.device)
        per_row.index_add_(0, lo[:, 1].clamp(0, tiles_y), span[:, 0] * (span[:, 1] > 0))
        per_row.index_add_(0, (hi[:, 1] + 1).clamp(0, tiles_y), -(span[:, 0] * (span[:, 1] > 0)))
        per_row = torch.cumsum(per_row, 0)[:tiles_y].tolist()
    bands, start, acc = [], 0, 0
    for row, count in enumerate(per_row):
        if acc and acc + count > max_intersections:
            bands.append((start, row))
            start, acc = row, 0
        acc += count
    bands.append((start, tiles_y))
    return bands


def rasterize(
    projected: Projected,
    features: Tensor,  # [N, C] per-splat values to composite (e.g. rgb and depth)
    width: int,
    height: int,
    *,
    tile: int = DEFAULT_TILE,
    max_block: int = DEFAULT_MAX_BLOCK,
    max_intersections: int = DEFAULT_MAX_INTERSECTIONS,
    ray_coefficients: Tensor | None = None,  # [N, 12] from lyra.render.eval3d.ray_coefficients(..., opacities)
) -> tuple[Tensor, Tensor]:
    """Composite ``features`` front to back: ``(image [H, W, C], alpha [H, W])`` (no background).

    The image is processed in bands of tile rows holding at most about
    ``max_intersections`` (tile, splat) pairs each, which bounds the memory
    of the intersection lists for huge scenes.

    With ``ray_coefficients`` each splat is evaluated in 3D along the pixel's
    ray (gsplat's ``with_eval3d``, :mod:`lyra.render.eval3d`) inside its
    screen box ``projected.extents`` instead of by the 2D conic.
    """
    dtype, device = features.dtype, features.device
    channels = features.shape[-1]
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    num_tiles = tiles_x * tiles_y
    pixels = tile * tile
    ids, lo, hi = tile_ranges(projected, width, height, tile)

    # Per-splat values gathered per intersection: a kernel-specific head, then (features..., 1).
    log_o = torch.log(projected.opacities.clamp_min(1e-30)).unsqueeze(-1)
    if ray_coefficients is None:  # (mx, my, a, b, c, log o)
        head = [projected.means2d, projected.conics, log_o]
        exponent_fn, saved_blocks = _conic_exponent, 3
    else:  # (mx, my, rx, ry, ray coefficients with log o folded in)
        head = [projected.means2d, projected.extents.to(features.dtype), ray_coefficients]
        exponent_fn, saved_blocks = ray_exponent, 3  # N and D are recomputed in backward (eval3d._QuotientExponent)
        # N and D are two blocks: halving the block keeps the same memory as EWA, and measured
        # faster (100k splats, 512 px, 1 thread: ~8%, the pair stays in cache).
        max_block = max(1, max_block // 2)
    head_width = sum(h.shape[-1] for h in head)
    table = torch.cat([*head, features, torch.ones_like(log_o)], dim=-1)
    # Tile-local pixel-centre monomials [6, P]: (x^2, xy, y^2, x, y, 1), coordinates relative to the
    # tile's centre: half the magnitudes of corner-relative ones, so the expanded quadratic cancels less.
    local = torch.arange(tile, dtype=dtype, device=device) + (0.5 - 0.5 * tile)
    ly, lx = torch.meshgrid(local, local, indexing="ij")
    lx, ly = lx.reshape(-1), ly.reshape(-1)
    kernel = (exponent_fn, head_width, box_tables(tile, dtype, device) if ray_coefficients is not None else None)
    monomials = torch.stack([lx * lx, lx * ly, ly * ly, lx, ly, torch.ones_like(lx)])

    color_tiles = features.new_zeros(num_tiles, pixels, channels)
    alpha_tiles = features.new_zeros(num_tiles, pixels)
    # Batch tiles (longest lists first) so that each [tiles, chunk, pixels] block stays
    # under max_block; the chunk shrinks to the batch's longest list to avoid padding.
    max_chunk = max(1, min(256, max_block // (pixels * 4)))
    out_ids, out_color, out_alpha = [], [], []
    for r0, r1 in _row_bands(lo, hi, tiles_y, max_intersections):
        splat_ids, offsets = _intersections(ids, lo, hi, tiles_x, (r0, r1))
        # Autograd keeps ~3 [tiles, splats, pixels] tensors per block for backward (alpha and
        # weights saved by the compositing Function, plus the colour product's input); past a
        # budget, recompute each block in backward instead (about 1.6x the time, a fraction of the memory).
        saved_bytes = saved_blocks * len(splat_ids) * pixels * table.element_size()
        recompute = table.requires_grad and torch.is_grad_enabled() and saved_bytes > RECOMPUTE_ABOVE_BYTES
        counts = offsets[1:] - offsets[:-1]
        busy = torch.nonzero(counts > 0).squeeze(-1)
        busy = busy[torch.argsort(counts[busy], descending=True)]
        b0 = 0
        while b0 < len(busy):
            chunk = min(max_chunk, int(counts[busy[b0]]))
            batch = busy[b0 : b0 + max(1, max_block // (pixels * chunk))]  # [B] tiles of this band
            b0 += len(batch)
            parts = _composite_batch(
                batch, counts, offsets, splat_ids, tiles_x, tile, r0, chunk, table, monomials, recompute, kernel
            )
            for tiles, color, log_t in parts:
                out_ids.append(tiles + r0 * tiles_x)
                out_color.append(color)
                out_alpha.append(1.0 - torch.exp(log_t))
    if out_ids:
        ids = torch.cat(out_ids)
        color_tiles = color_tiles.index_copy(0, ids, torch.cat(out_color))
        alpha_tiles = alpha_tiles.index_copy(0, ids, torch.cat(out_alpha))
    image = _untile(color_tiles, tiles_x, tiles_y, tile)[:height, :width]
    alpha = _untile(alpha_tiles.unsqueeze(-1), tiles_x, tiles_y, tile)[:height, :width, 0]
    return image, alpha


def _composite_batch(
    batch, counts, offsets, splat_ids, tiles_x, tile, row0, chunk, table, monomials, recompute, kernel
):
    """Front-to-back compositing for tiles ``batch [B]``; ``kernel = (exponent_fn, head_width, aux)``.

    Yields ``(tile_ids [A], color [A, P, C], log_T [A, P])`` as tiles finish
    (all pixels stopped or list exhausted); the state of unfinished tiles is
    kept compacted so finished ones cost nothing.
    """
    dtype, device = table.dtype, table.device
    num, pixels = len(batch), monomials.shape[1]
    channels = table.shape[-1] - kernel[1] - 1
    color = table.new_zeros(num, pixels, channels)
    log_t = table.new_zeros(num, pixels)
    stop_at = table.new_full((num, pixels), _LOG_T_MIN)  # +inf once a pixel has stopped
    tiles = batch
    origin = torch.stack([(batch % tiles_x) * tile, (batch // tiles_x + row0) * tile], -1).to(dtype)
    origin = origin + 0.5 * tile  # [B, 2] tile centres
    remaining = counts[batch]
    first = offsets[batch]
    longest = int(remaining.max())
    for start in range(0, longest, chunk):
        with torch.no_grad():
            live = (remaining > start) & ~torch.isinf(stop_at).all(-1)
        if not bool(live.all()):
            # index_select with integer indices: much faster than boolean-mask indexing on CPU.
            done_rows = torch.nonzero(~live).squeeze(-1)
            yield tiles[done_rows], color.index_select(0, done_rows), log_t.index_select(0, done_rows)
            rows_left = torch.nonzero(live).squeeze(-1)
            tiles, origin, remaining, first = (t.index_select(0, rows_left) for t in (tiles, origin, remaining, first))
            color, log_t, stop_at = (t.index_select(0, rows_left) for t in (color, log_t, stop_at))
            if len(tiles) == 0:
                return
        slot = start + torch.arange(chunk, device=device)  # [K]
        valid = slot < remaining[:, None]  # [A, K]
        sid = splat_ids.index_select(0, (first[:, None] + slot).clamp(max=len(splat_ids) - 1).reshape(-1))  # [A*K]
        rows = table.index_select(0, sid).reshape(len(first), chunk, table.shape[-1])  # [A, K, head + C + 1]
        if recompute:  # keep only rows (K x (head + C + 1) per tile) for backward, not the [A, K, P] block
            acc, stop_at = checkpoint(
                _composite_chunk, rows, origin, valid, stop_at, log_t.detach(), monomials, kernel, use_reentrant=False
            )
        else:
            acc, stop_at = _composite_chunk(rows, origin, valid, stop_at, log_t, monomials, kernel)
        transmittance = torch.exp(log_t).unsqueeze(-1)
        color = color + transmittance * acc[..., :channels]
        log_t = log_t + torch.log((1.0 - acc[..., channels]).clamp_min(1e-30))
    yield tiles, color, log_t


def _composite_chunk(
    rows: Tensor,  # [A, K, head + C + 1] gathered splat rows (kernel head, features..., 1)
    origin: Tensor,  # [A, 2] tile centres in pixels
    valid: Tensor,  # [A, K] False for padding slots
    stop_at: Tensor,  # [A, P] log-transmittance floor; +inf once a pixel has stopped
    log_t: Tensor,  # [A, P] log transmittance at the chunk start
    monomials: Tensor,  # [6, P]
    kernel: tuple,  # (exponent_fn, head_width, aux): aux is the exponent function's constant last argument
) -> tuple[Tensor, Tensor]:
    """One chunk of splats over a batch of tiles: ``(acc [A, P, C + 1], stop_at [A, P])``.

    ``acc`` holds the features composited within the chunk (relative to the
    chunk-start transmittance) and, last, the chunk's accumulated alpha.
    """
    exponent_fn, head_width, aux = kernel
    alpha, log_1m, log_incl, weights = _alpha_weights(exponent_fn(rows, origin, valid, monomials, aux))  # [A, K, P]
    with torch.no_grad():
        limit = stop_at - log_t  # [A, P]; +inf for stopped pixels
        alive = torch.isfinite(limit)
        # log_incl only decreases along K, so its last value tells whether a pixel stops here.
        stopping = bool((alive & (log_incl[:, -1, :] < limit)).any())
        if stopping:
            keep = log_incl >= limit.unsqueeze(1)  # a prefix along K for every pixel
            stop_at = torch.where(keep[:, -1, :], stop_at, torch.inf)
    if stopping:
        weights = torch.where(keep, weights, weights.new_zeros(()))
    # One matmul gives the features and (last channel) the chunk's accumulated alpha.
    # As rows^T @ weights ([A, C + 1, K] @ [A, K, P]): ~7x faster on CPU than weights^T @ rows,
    # whose transposed [K, P] operand with a tiny output width MKL handles poorly.
    acc = (rows[..., head_width:].transpose(1, 2) @ weights).transpose(1, 2)  # [A, P, C + 1]
    if not stopping:
        acc = acc * alive.unsqueeze(-1)  # stopped pixels take nothing more
    return acc, stop_at


def _conic_exponent(
    rows: Tensor,  # [A, K, >= 6] (mx, my, a, b, c, log o, ...)
    origin: Tensor,  # [A, 2] tile centres in pixels
    valid: Tensor,  # [A, K]
    monomials: Tensor,  # [6, P]
    _aux: None,
) -> Tensor:  # [A, K, P]
    """EWA: ``log(o) - q / 2`` with the 2D conic ``q``, one matmul per block; ``-inf`` for padding."""
    dx0 = rows[..., 0] - origin[:, None, 0]  # mean in tile-local coordinates
    dy0 = rows[..., 1] - origin[:, None, 1]
    a, b, c = rows[..., 2], rows[..., 3], rows[..., 4]
    # Minus the exponent (log o - q/2) as a quadratic in tile-local pixel coordinates.
    const = rows[..., 5] - 0.5 * (a * dx0 * dx0 + 2 * b * dx0 * dy0 + c * dy0 * dy0)
    const = torch.where(valid, const, const.new_full((), -torch.inf))
    coef = torch.stack([-0.5 * a, -b, -0.5 * c, a * dx0 + b * dy0, b * dx0 + c * dy0, const], dim=-1)
    return coef @ monomials


def _alpha_weights(exponent: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """From ``log(o) - q/2`` ``[A, K, P]``: alpha, log(1 - alpha), log T after each splat
    (cumulative along K, relative to the chunk start) and the weights alpha * T before it.

    With autograd only the weights carry gradients (see :class:`_AlphaWeights`)."""
    if torch.is_grad_enabled() and exponent.requires_grad:
        alpha, log_1m, log_incl, weights = _AlphaWeights.apply(exponent)
        return alpha, log_1m, log_incl, weights
    return _alpha_weights_values(exponent.clamp_(min=_EXPONENT_FLOOR).exp_())


def _alpha_weights_values(alpha: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`_alpha_weights` from ``exp(exponent)``, computed in place (no autograd)."""
    alpha = alpha.clamp_(max=ALPHA_MAX)
    # alpha >= ALPHA_MIN <=> alpha > (the next value below ALPHA_MIN in this dtype): one fused pass
    # instead of a comparison plus masked_fill_.
    torch.threshold_(alpha, _below(ALPHA_MIN, alpha.dtype), 0.0)
    log_1m = torch.neg(alpha).log1p_()
    log_incl = torch.cumsum(log_1m, dim=1)
    # T before splat j is exp(log_incl[j - 1]) (1 for the first): a shifted exp instead of
    # exp(log_incl - log_1m) saves a full pass and takes no rounding from the subtraction.
    weights = torch.empty_like(alpha)
    weights[:, 0].fill_(1.0)
    torch.exp(log_incl[:, :-1], out=weights[:, 1:])
    return alpha, log_1m, log_incl, weights.mul_(alpha)


class _AlphaWeights(torch.autograd.Function):
    """:func:`_alpha_weights` with a hand-written backward for the weights ``w_j = alpha_j T_j``.

    Autograd through exp/clamp/where/log1p/cumsum/exp keeps ~6 block-sized tensors
    and runs ~15 passes over them in backward (two flips for the reverse cumsum);
    this keeps 2 and runs ~7.
    With ``T_j = prod_{k<j} (1 - alpha_k)``:
    ``dL/dalpha_j = g_j T_j - (sum_{k>j} g_k w_k) / (1 - alpha_j)``, and
    ``dalpha/dexponent = alpha`` where alpha is neither cut off nor capped.
    alpha, log(1 - alpha) and log T are returned without gradients.
    """

    @staticmethod
    def forward(ctx, exponent):
        alpha, log_1m, log_incl, weights = _alpha_weights_values(torch.clamp(exponent, min=_EXPONENT_FLOOR).exp_())
        ctx.save_for_backward(alpha, weights)
        ctx.mark_non_differentiable(alpha, log_1m, log_incl)
        return alpha, log_1m, log_incl, weights

    @staticmethod
    def backward(ctx, _g_alpha, _g_log_1m, _g_log_incl, grad_weights):
        alpha, weights = ctx.saved_tensors
        gw = grad_weights * weights
        after = torch.cumsum(gw, dim=1)
        after = torch.sub(after[:, -1:, :], after)  # sum over later splats k > j
        # dL/dexponent = alpha dL/dalpha = g_j w_j - alpha_j / (1 - alpha_j) * after_j.
        grad = gw.sub_(after.mul_(alpha).div_(torch.sub(1.0, alpha)))
        return torch.where(alpha < ALPHA_MAX, grad, grad.new_zeros(()))


def _below(value: float, dtype: torch.dtype) -> float:
    """The largest ``dtype`` number below ``value`` (as rounded to ``dtype``)."""
    point = torch.tensor(value, dtype=dtype)
    return float(torch.nextafter(point, point.new_tensor(-math.inf)))


def _untile(tiles: Tensor, tiles_x: int, tiles_y: int, tile: int) -> Tensor:
    """``[T, P, C]`` row-major tiles -> ``[tiles_y*tile, tiles_x*tile, C]`` image."""
    channels = tiles.shape[-1]
    image = tiles.reshape(tiles_y, tiles_x, tile, tile, channels).permute(0, 2, 1, 3, 4)
    return image.reshape(tiles_y * tile, tiles_x * tile, channels)

"""Vector quantisation for SOG: 256-entry scalar codebooks and the SH palette (k-means), in torch.

The SOG writer needs (a) 1-D codebooks of 256 values shared by several
columns (log-scales, DC colour, SH palette entries) and (b) a palette of up
to 64k SH vectors with a label per splat. The reference converter runs a
flat k-means over all splats against all 64k centroids (minutes for 20k
splats on this CPU, hours at a million). Here the palette is a two-level
k-means: ~sqrt(P) coarse clusters fitted on a sample, then each coarse
cluster gets a share of the palette proportional to its size and its own
small k-means. Assignment costs N * (sqrt(P) + P / sqrt(P)) distance rows
instead of N * P, which is seconds at a million splats; the palette is a
little worse than a flat k-means (each splat only searches its coarse cell).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

CODEBOOK_SIZE = 256
_DISTANCE_BLOCK_ELEMENTS = 1 << 23  # rows * centroids per distance block (32 MiB of float32)


def codebook_1d(values: Tensor, size: int = CODEBOOK_SIZE, bins: int = 1024,
                tail_weight: float = 0.7) -> tuple[Tensor, Tensor]:
    """Fit ``size`` sorted scalar centroids to ``values`` (any shape); return ``(codebook [size], labels uint8)``.

    ``labels`` has the shape of ``values`` and indexes the codebook. With at
    most ``size`` distinct values the codebook holds them exactly. Otherwise:

    - the values are summarised by at most ``bins`` bins whose edges are the
      union of quantile edges (resolution where values are dense) and evenly
      spaced edges (resolution in the tails, however few values sit there);
    - each bin weighs ``count ** tail_weight``. Plain MSE (weight 1) starves the
      tails: Lloyd's fit from quantiles left colours at the ends of the range up
      to 0.08 off (issue 19). A sub-linear weight gives the sparse tails a say
      while dense regions still get most centroids;
    - the centroids minimise the weighted squared error over the bins exactly, by
      dynamic programming over contiguous runs of bins (optimal 1-D k-means). Lloyd's
      iterations on the same weighted bins stalled in a local optimum with the
      tail centroids still 0.35 apart (measured on normal colours).
    ``tail_weight`` trades the worst error (tails) against the mean (dense middle):
    at 0.7, on 5000 SH-3 splats decoded by splat-transform, the worst / mean DC colour
    error was 0.0062 / 0.00098 on normal colours (splat-transform's own SOG: 0.0074 /
    0.00098) and 0.029 / 0.0026 on heavy-tailed ones (1.77 / 0.0036); 0.5 gave a
    higher mean, 1.0 a higher worst case. ``bench/compact_formats.py`` measures it.
    """
    flat = values.reshape(-1).float().contiguous()
    if flat.numel() == 0:
        return torch.zeros(size), torch.zeros(values.shape, dtype=torch.uint8)
    distinct = torch.unique(flat)
    if len(distinct) <= size:
        book = torch.cat([distinct, distinct[-1:].expand(size - len(distinct))])
        return book, torch.bucketize(flat, distinct).to(torch.uint8).reshape(values.shape)
    centres, weights = _tail_weighted_bins(flat.double().sort().values, bins, tail_weight)
    centroids = _optimal_centroids(centres, weights, size).float()
    centroids = torch.cat([centroids, centroids[-1:].expand(size - len(centroids))])
    labels = torch.bucketize(flat, (centroids[1:] + centroids[:-1]) / 2)
    return centroids, labels.to(torch.uint8).reshape(values.shape)


def _tail_weighted_bins(ordered: Tensor, bins: int, tail_weight: float) -> tuple[Tensor, Tensor]:
    """Bin means (sorted) and weights ``count ** tail_weight`` of sorted float64 ``ordered`` (see ``codebook_1d``)."""
    n = len(ordered)
    half = bins // 2
    quantile_edges = ordered[torch.linspace(0, n - 1, half + 1, dtype=torch.float64).round().long()]
    even_edges = torch.linspace(float(ordered[0]), float(ordered[-1]), half + 1, dtype=torch.float64)
    edges = torch.unique(torch.cat([quantile_edges, even_edges]))[1:-1]  # inner edges, sorted
    bounds = torch.unique(torch.cat([torch.zeros(1, dtype=torch.int64), torch.searchsorted(ordered, edges),
                                     torch.tensor([n])]))  # empty bins dropped
    counts = (bounds[1:] - bounds[:-1]).double()
    prefix = torch.cat([torch.zeros(1, dtype=torch.float64), ordered.cumsum(0)])
    return (prefix[bounds[1:]] - prefix[bounds[:-1]]) / counts, counts.pow(tail_weight)


def _optimal_centroids(centres: Tensor, weights: Tensor, k: int) -> Tensor:
    """The ``<= k`` centroids minimising ``sum weights * (centres - nearest centroid)^2`` (sorted ``centres [H]``).

    Clusters of sorted points are contiguous runs, so ``best[m][j]`` (the least
    error of bins ``0..j`` in ``m`` runs) is ``min_s best[m-1][s] + cost(s+1..j)``:
    one ``[H, H]`` min per ``m`` (``k`` vectorised steps of ``H^2``, about a second
    of one core at ``H = 1024``), then a backtrack.
    """
    h = len(centres)
    k = min(k, h)
    zero = torch.zeros(1, dtype=torch.float64)
    pw, pwx, pwxx = (torch.cat([zero, t.cumsum(0)]) for t in (weights, weights * centres, weights * centres**2))
    first, last = torch.arange(h)[:, None], torch.arange(h)[None, :].expand(h, h)  # a run covers first..last
    a = first.clamp(max=h - 1).expand(h, h)
    w = pw[last + 1] - pw[a]
    cost = ((pwxx[last + 1] - pwxx[a]) - (pwx[last + 1] - pwx[a]) ** 2 / w.clamp(min=1e-300)).clamp(min=0)
    cost = torch.where(first <= last, cost, torch.inf).float()  # [first, last]
    best = cost[0].clone()  # one run: bins 0..j
    splits = []
    for _ in range(1, k):
        value, where = (best[:-1, None] + cost[1:]).min(0)  # the last run starts at s + 1: [s, j] -> j
        splits.append(where)
        best = value
    ends, end = [], h - 1
    for where in reversed(splits):
        ends.append(end)
        end = int(where[end])
    ends.append(end)
    ends = torch.tensor(ends[::-1])
    starts = torch.cat([torch.zeros(1, dtype=torch.int64), ends[:-1] + 1])
    return (pwx[ends + 1] - pwx[starts]) / (pw[ends + 1] - pw[starts])


def nearest(points: Tensor, centroids: Tensor) -> Tensor:
    """Index of the nearest centroid (squared Euclidean) for each of ``points [N, D]``; blocks bound memory."""
    c_norm = (centroids * centroids).sum(1)  # [K]
    rows = max(1, _DISTANCE_BLOCK_ELEMENTS // max(1, len(centroids)))
    out = torch.empty(len(points), dtype=torch.int64)
    for start in range(0, len(points), rows):
        block = points[start:start + rows]
        # argmin ||x - c||^2 = argmin (||c||^2 - 2 x.c); ||x||^2 is constant per row
        out[start:start + rows] = torch.addmm(c_norm, block, centroids.T, alpha=-2.0).argmin(1)
    return out


def cluster_sums(points: Tensor, labels: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Per-cluster sums ``[k, D]`` (float64) and counts ``[k]`` as differences of a sorted prefix sum.

    (``index_add_`` was measured at ~90 ms per call on 500 x 45 blocks on this shared CPU; this is ~1 ms.)
    """
    counts = torch.bincount(labels, minlength=k)
    prefix = torch.zeros(len(points) + 1, points.shape[1], dtype=torch.float64)
    torch.cumsum(points[torch.argsort(labels)].double(), 0, out=prefix[1:])
    ends = counts.cumsum(0)
    return prefix[ends] - prefix[ends - counts], counts


def kmeans(points: Tensor, k: int, iterations: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means from ``k`` distinct random points; returns ``(centroids [k, D], labels [N])``.

    Empty clusters keep their previous centre. ``k`` is capped at ``len(points)``.
    """
    k = min(k, len(points))
    centroids = points[torch.randperm(len(points), generator=gen)[:k]].clone()
    labels = nearest(points, centroids)
    for _ in range(iterations):
        sums, counts = cluster_sums(points, labels, k)
        centroids = torch.where((counts > 0)[:, None], (sums / counts.clamp(min=1)[:, None]).float(), centroids)
        labels = nearest(points, centroids)
    return centroids, labels


def _shares(sizes: Tensor, total: int) -> Tensor:
    """Split ``total`` palette entries over clusters in proportion to ``sizes`` (each >= 1, <= its size)."""
    exact = sizes.double() * total / sizes.sum()
    shares = exact.floor().long().clamp(min=1)
    shares = torch.minimum(shares, sizes)
    left = total - int(shares.sum())
    if left > 0:  # hand out the remainder by largest fractional part, where a cluster has room
        order = torch.argsort(exact - exact.floor(), descending=True)
        for index in order.tolist():
            if left == 0:
                break
            if shares[index] < sizes[index]:
                shares[index] += 1
                left -= 1
    return shares


def palette(points: Tensor, size: int, iterations: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A palette of at most ``size`` vectors for ``points [N, D]``: ``(centroids [P, D], labels [N] int64)``.

    With ``N <= size`` every point is its own entry. Otherwise a two-level
    k-means (module docstring): deterministic for a given ``seed``.
    """
    points = points.float().contiguous()
    n = len(points)
    if n <= size:
        return points.clone(), torch.arange(n)
    gen = torch.Generator().manual_seed(seed)
    coarse_k = max(1, min(256, math.isqrt(size)))
    sample = points[torch.randperm(n, generator=gen)[: min(n, 256 * coarse_k)]]
    coarse, _ = kmeans(sample, coarse_k, 10, gen)
    coarse_labels = nearest(points, coarse)
    sizes = torch.bincount(coarse_labels, minlength=len(coarse))
    return _fine_kmeans(points, coarse_labels, _shares(sizes, size), iterations, gen)


def _fine_kmeans(points: Tensor, cells: Tensor, shares: Tensor, iterations: int,
                 gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means inside every coarse cell at once (``shares[c]`` centres in cell ``c``).

    All cells advance together: distances by padded batched matmuls over
    groups of cells, sums by one sorted prefix sum; a few large tensor ops per
    iteration instead of a Python loop over cells (each small op costs
    milliseconds of thread hand-off on a busy CPU). Returns ``(table [P, D], labels [N])``.
    """
    n, d = points.shape
    c = len(shares)
    sizes = torch.bincount(cells, minlength=c)
    # cell by cell, in a random order inside each cell (the first share_c points seed its centres)
    order = torch.argsort(cells.double() + 0.5 * torch.rand(n, generator=gen, dtype=torch.float64))
    grouped, cell_of = points[order], cells[order]
    starts = sizes.cumsum(0) - sizes
    rank = torch.arange(n) - starts[cell_of]
    k_max = int(shares.max())
    valid = torch.arange(k_max)[None, :] < shares[:, None]  # [C, Kmax]
    centroids = grouped[(starts[:, None] + torch.arange(k_max)[None, :]).clamp(max=n - 1)]  # [C, Kmax, D]
    for step in range(iterations + 1):
        labels = _assign_in_cells(grouped, cell_of, rank, starts, sizes, centroids, valid)
        if step == iterations:
            break
        sums, counts = cluster_sums(grouped, cell_of * k_max + labels, c * k_max)
        means = (sums / counts.clamp(min=1)[:, None]).float().reshape(c, k_max, d)
        centroids = torch.where((counts.reshape(c, k_max) > 0)[..., None], means, centroids)
    offsets = shares.cumsum(0) - shares
    out = torch.empty(n, dtype=torch.int64)
    out[order] = offsets[cell_of] + labels
    return centroids[valid], out


def _assign_in_cells(grouped: Tensor, cell_of: Tensor, rank: Tensor, starts: Tensor, sizes: Tensor,
                     centroids: Tensor, valid: Tensor) -> Tensor:
    """Nearest valid centre of its own cell for each (cell-sorted) point: slot indices ``[N]``."""
    c, k_max, d = centroids.shape
    norms = (centroids * centroids).sum(-1).masked_fill(~valid, float("inf"))  # [C, Kmax]
    n_max = int(sizes.max())
    step = max(1, _DISTANCE_BLOCK_ELEMENTS // (n_max * max(k_max, d)))
    labels = torch.empty(len(grouped), dtype=torch.int64)
    for first in range(0, c, step):
        last = min(c, first + step)
        lo, hi = int(starts[first]), int(starts[last - 1] + sizes[last - 1])
        if hi == lo:
            continue
        local, where = cell_of[lo:hi] - first, rank[lo:hi]
        padded = grouped.new_zeros(last - first, n_max, d)
        padded[local, where] = grouped[lo:hi]
        distances = torch.baddbmm(norms[first:last, None, :], padded, centroids[first:last].transpose(1, 2), alpha=-2.0)
        labels[lo:hi] = distances.argmin(-1)[local, where]
    return labels

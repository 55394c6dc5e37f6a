"""Selections: boolean masks ``[N]`` over the splats of a :class:`Gaussians` set.

Every function here is a few vectorized torch passes over all splats (no
Python loop per splat, no ``[N, 3, 3]`` temporaries), so a selection over a
million splats takes milliseconds on a CPU. Geometry arguments (centres,
rotations, cameras) may be tensors, numpy arrays or sequences; they are cast to
the dtype and device of ``means``.

Conventions: rotations are (w, x, y, z) quaternions; cameras are OpenCV
camera-to-world matrices (x right, y down, z forward) with pinhole intrinsics
``(fx, fy, cx, cy)`` in pixels, pixel ``(u, v)`` measured from the image's
top-left corner (the convention of :mod:`lyra.render.rays`).

Errors: :class:`lyra.errors.EditError` for a mask of the wrong length, an
unknown combine mode or a non-positive size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

from lyra.edit.args import as_mask, as_vector
from lyra.errors import EditError
from lyra.scene.gaussians import Gaussians, quats_to_rotmats

CombineMode = Literal["replace", "add", "subtract", "intersect"]
COMBINE_MODES: tuple[str, ...] = ("replace", "add", "subtract", "intersect")

# Pick tolerance floor as a fraction of the scene size (see pick_nearest_on_ray).
PICK_SCENE_FRACTION = 0.005
# Pick tolerance as a multiple of a splat's largest scale (3 sigma covers its visible footprint).
PICK_SCALE_SIGMAS = 3.0


def _check_means(means: Tensor) -> None:
    if means.ndim != 2 or means.shape[1] != 3:
        raise EditError(f"means must have shape (N, 3), got {tuple(means.shape)}")


# ------------------------------------------------------------------ spatial
def select_box(
    means: Tensor,  # [N, 3]
    center: Tensor | Sequence[float],  # [3]
    wxyz: Tensor | Sequence[float],  # [4] rotation of the box (box axes = columns of R)
    half_extents: Tensor | Sequence[float],  # [3] along the box's own axes
) -> Tensor:  # [N] bool
    """Splats whose centre lies inside an oriented box (faces included).

    The box's local frame is ``p_world = R p_local + center`` with ``R`` the
    rotation of ``wxyz``; a point is inside when ``|p_local| <= half_extents``
    on every axis.
    """
    _check_means(means)
    center = as_vector(center, means, 3, "box center")
    rot = quats_to_rotmats(as_vector(wxyz, means, 4, "box rotation"))  # [3, 3]
    half = as_vector(half_extents, means, 3, "box half extents")
    # Row form of R^T (p - c): one [N, 3] matmul, no per-splat matrices.
    local = (means - center) @ rot  # [N, 3]
    return (local.abs_() <= half).all(dim=-1)


def select_sphere(
    means: Tensor,  # [N, 3]
    center: Tensor | Sequence[float],  # [3]
    radius: float,
) -> Tensor:  # [N] bool
    """Splats whose centre lies within ``radius`` of ``center`` (boundary included)."""
    _check_means(means)
    center = as_vector(center, means, 3, "sphere center")
    return ((means - center).square_().sum(dim=-1)) <= float(radius) ** 2


def select_screen_rect(
    means: Tensor,  # [N, 3]
    c2w: Tensor,  # [4, 4] OpenCV camera-to-world
    intrinsics: Tensor | Sequence[float],  # [4] (fx, fy, cx, cy) in pixels
    width: int,
    height: int,
    rect: Sequence[float],  # (x0, y0, x1, y1) in pixels, corners in any order
) -> Tensor:  # [N] bool
    """Splats in front of the camera whose projected centre falls inside a screen rectangle.

    The rectangle is clipped to the image ``[0, width] x [0, height]``, so a
    drag that leaves the window selects only what is visible. A splat behind
    the camera (camera-space ``z <= 0``) is never selected.

    The rectangle and the camera centre bound a frustum of four side planes
    through the centre; e.g. ``x0 <= fx*x/z + cx`` is ``fx*x - (x0-cx)*z >= 0``
    for ``z > 0``. All five plane tests are one ``[N, 3] x [3, 5]`` product in
    world space (no division by depth, few passes over the splats).
    """
    _check_means(means)
    c2w = torch.as_tensor(c2w, dtype=means.dtype, device=means.device)
    if c2w.shape != (4, 4):
        raise EditError(f"c2w must have shape (4, 4), got {tuple(c2w.shape)}")
    fx, fy, cx, cy = as_vector(intrinsics, means, 4, "intrinsics").tolist()
    if len(rect) != 4:
        raise EditError(f"rect must be (x0, y0, x1, y1), got {rect!r}")
    x0, x1 = sorted((float(rect[0]), float(rect[2])))
    y0, y1 = sorted((float(rect[1]), float(rect[3])))
    x0, x1 = max(x0, 0.0), min(x1, float(width))
    y0, y1 = max(y0, 0.0), min(y1, float(height))
    if x1 < x0 or y1 < y0:
        return torch.zeros(len(means), dtype=torch.bool, device=means.device)
    planes_cam = means.new_tensor(
        [
            [fx, 0.0, cx - x0],  # left:   fx*x - (x0 - cx)*z >= 0
            [-fx, 0.0, x1 - cx],  # right:  (x1 - cx)*z - fx*x >= 0
            [0.0, fy, cy - y0],  # top
            [0.0, -fy, y1 - cy],  # bottom
            [0.0, 0.0, 1.0],  # in front: z > 0
        ]
    )  # [5, 3] inward normals in camera coordinates
    rot, origin = c2w[:3, :3], c2w[:3, 3]
    # n_cam . R^T (p - o) == (R n_cam) . (p - o): rotate the normals, not the splats.
    signed = (means - origin) @ (planes_cam @ rot.T).T  # [N, 5]
    return (signed[:, :4] >= 0).all(dim=-1) & (signed[:, 4] > 0)


def pick_nearest_on_ray(
    means: Tensor,  # [N, 3]
    origin: Tensor | Sequence[float],  # [3]
    direction: Tensor | Sequence[float],  # [3], need not be unit
    *,
    max_perp_distance: float | None = None,
    scales: Tensor | None = None,  # [N, 3] linear, optional
) -> int | None:
    """Index of the splat a click on this ray means, or None when nothing is near it.

    Rule: a splat is a candidate when it lies in front of the origin (ray depth
    ``t > 0``) and its centre's perpendicular distance to the ray is at most its
    tolerance; among candidates the one with the smallest depth ``t`` (nearest
    the camera) wins. The tolerance is ``max_perp_distance`` when given;
    otherwise ``max(3 * largest scale of the splat, 0.005 * scene size)`` where
    the scene size is the diagonal of the 1%-99% quantile box of the centres
    (robust to far floaters); without ``scales`` only the scene term is used.
    """
    _check_means(means)
    if len(means) == 0:
        return None
    origin = as_vector(origin, means, 3, "ray origin")
    direction = as_vector(direction, means, 3, "ray direction")
    norm = float(direction.norm())
    if norm == 0.0:
        raise EditError("ray direction must be non-zero")
    direction = direction / norm
    rel = means - origin  # [N, 3]
    depth = rel @ direction  # [N]
    perp_sq = (rel.square_().sum(dim=-1) - depth.square()).clamp_min_(0.0)  # [N]
    if max_perp_distance is not None:
        tol_sq: Tensor | float = float(max_perp_distance) ** 2
    else:
        floor = PICK_SCENE_FRACTION * _robust_scene_size(means)
        if scales is not None:
            if scales.shape != means.shape:
                raise EditError(f"scales must have shape {tuple(means.shape)}, got {tuple(scales.shape)}")
            tol_sq = (PICK_SCALE_SIGMAS * scales.amax(dim=-1)).clamp_min(floor).square()
        else:
            tol_sq = floor**2
    candidates = (depth > 0) & (perp_sq <= tol_sq)
    if not bool(candidates.any()):
        return None
    depth = torch.where(candidates, depth, torch.full_like(depth, float("inf")))
    return int(depth.argmin())


def _robust_scene_size(means: Tensor) -> float:  # means [N, 3]
    """Diagonal of the 1%..99% quantile box of (at most 100k strided) centres."""
    step = max(1, len(means) // 100_000)
    sample = means[::step].float()
    q = torch.quantile(sample, torch.tensor([0.01, 0.99], dtype=sample.dtype), dim=0)  # [2, 3]
    return float((q[1] - q[0]).norm())


# --------------------------------------------------------------- attributes
def opacity_below(g: Gaussians, threshold: float) -> Tensor:  # [N] bool
    """Splats with opacity strictly below ``threshold`` (near-transparent ones)."""
    return g.opacities < float(threshold)


def largest_scale_above(g: Gaussians, threshold: float) -> Tensor:  # [N] bool
    """Splats whose largest linear scale exceeds ``threshold`` (oversized blobs)."""
    return g.scales.amax(dim=-1) > float(threshold)


def distance_from_center_above(
    g: Gaussians,
    radius: float,
    center: Tensor | Sequence[float] | None = None,  # [3]; default: per-axis median of the means
) -> Tensor:  # [N] bool
    """Splats whose centre is farther than ``radius`` from ``center`` (far-away debris).

    The default centre is the per-axis median of the means, which a few
    far floaters cannot drag away (unlike the mean).
    """
    if center is None:
        center = g.means.median(dim=0).values if len(g) else torch.zeros(3, dtype=g.dtype)
    center = as_vector(center, g.means, 3, "center")
    return (g.means - center).square_().sum(dim=-1) > float(radius) ** 2


def color_near(
    g: Gaussians,
    rgb: Tensor | Sequence[float],  # [3] in [0, 1]
    tolerance: float,
) -> Tensor:  # [N] bool
    """Splats whose base colour (DC band, clamped to [0, 1]) is within ``tolerance`` of ``rgb``.

    Distance is Euclidean in RGB, so ``tolerance`` ranges from 0 (exact) to
    ``sqrt(3)`` (everything).
    """
    target = as_vector(rgb, g.sh, 3, "rgb")
    base = g.rgb().clamp_(0.0, 1.0)  # [N, 3]
    return (base - target).square_().sum(dim=-1) <= float(tolerance) ** 2


# -------------------------------------------------------------- mask algebra
def combine(
    current: Tensor | None,  # [N] bool, or None for "nothing selected yet"
    new: Tensor,  # [N] bool
    mode: CombineMode = "replace",
) -> Tensor:  # [N] bool
    """Merge a new selection into the current one.

    ``replace`` -> new; ``add`` -> current | new; ``subtract`` -> current & ~new;
    ``intersect`` -> current & new. ``current=None`` means an empty selection.
    The result is always a fresh tensor (inputs are never modified).
    """
    if mode not in COMBINE_MODES:
        raise EditError(f"selection mode must be one of {COMBINE_MODES}, got {mode!r}")
    new = as_mask(new, None, "new selection")
    if current is None:
        current = torch.zeros_like(new)
    current = as_mask(current, len(new), "current selection")
    if mode == "replace":
        return new.clone()
    if mode == "add":
        return current | new
    if mode == "subtract":
        return current & ~new
    return current & new


def invert(mask: Tensor) -> Tensor:  # [N] bool -> [N] bool
    """Everything not selected."""
    return ~as_mask(mask, None, "selection")

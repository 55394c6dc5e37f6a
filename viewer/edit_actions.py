"""Edit actions on :class:`viewer.state.AppState`, free of viser (the Edit panel is thin glue over these).

Each selection action evaluates a :mod:`lyra.edit.select` predicate per frame
in the state's scope and combines it with the current selection (``mode``:
replace | add | subtract | intersect). Each edit applies a
:mod:`lyra.edit.ops` function to the selected splats of every frame in scope,
as one undoable command. Cameras are :class:`lyra.render.Camera` (OpenCV).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lyra.edit import floaters, ops, select
from lyra.errors import EditError
from lyra.scene.sh import SH_C0
from viewer.state import AppState

# ------------------------------------------------------------- selections


def select_box(state: AppState, center: Sequence[float], wxyz: Sequence[float], half_extents: Sequence[float], mode: str = "replace") -> int:
    return state.select(lambda i, g: select.select_box(g.means, center, wxyz, half_extents), mode)


def select_sphere(state: AppState, center: Sequence[float], radius: float, mode: str = "replace") -> int:
    return state.select(lambda i, g: select.select_sphere(g.means, center, radius), mode)


def select_screen_rect(state: AppState, camera, rect_px: Sequence[float], mode: str = "replace") -> int:
    """Splats whose centres project into ``rect_px = (x0, y0, x1, y1)`` of ``camera`` (a single Camera)."""
    return state.select(
        lambda i, g: select.select_screen_rect(g.means, camera.c2w, camera.intrinsics, camera.width, camera.height, rect_px),
        mode,
    )


def pick_on_ray(state: AppState, origin: Sequence[float], direction: Sequence[float], mode: str = "replace") -> int | None:
    """Select the visible splat a click ray hits in the current frame; returns its index or None."""
    with state.lock:
        frame = state.current()
        visible = (~frame.deleted).nonzero().squeeze(1)
        g = frame.gaussians
        hit = select.pick_nearest_on_ray(g.means[visible], origin, direction, scales=g.scales[visible])
        if hit is None:
            return None
        index = int(visible[hit])
        current_index = state.layer().frame_index(state.frame)

        def only_hit(i, frame_g):
            mask = torch.zeros(len(frame_g), dtype=torch.bool)
            if i == current_index:
                mask[index] = True
            return mask

        state.select(only_hit, mode)
        return index


def select_opacity_below(state: AppState, threshold: float, mode: str = "replace") -> int:
    return state.select(lambda i, g: select.opacity_below(g, threshold), mode)


def select_scale_above(state: AppState, threshold: float, mode: str = "replace") -> int:
    return state.select(lambda i, g: select.largest_scale_above(g, threshold), mode)


def select_far_from_center(state: AppState, radius: float, mode: str = "replace") -> int:
    return state.select(lambda i, g: select.distance_from_center_above(g, radius), mode)


def select_color_near(state: AppState, rgb: Sequence[float], tolerance: float, mode: str = "replace") -> int:
    """``rgb`` in [0, 1]; Euclidean RGB distance at most ``tolerance``."""
    return state.select(lambda i, g: select.color_near(g, rgb, tolerance), mode)


# ------------------------------------------------------------------ edits


def remove_floaters(state: AppState, k: int = 16, std_ratio: float = 2.0) -> int:
    """Soft-delete statistical outliers among the visible splats of each frame in scope."""

    def flag(i, g, visible):
        mask = torch.zeros(len(g), dtype=torch.bool)
        mask[visible] = floaters.floater_mask(g.means[visible], k=k, std_ratio=std_ratio)
        return mask

    return state.delete_where("Remove floaters", flag)


def _selection_centroid(g, mask):
    return g.means[mask].double().mean(0).tolist()


def translate(state: AppState, offset: Sequence[float]) -> int:
    off = [float(v) for v in offset]
    return state.apply_to_selection(f"Move by ({off[0]:.3g}, {off[1]:.3g}, {off[2]:.3g})", lambda g, m: ops.translate(g, m, off))


def rotate(state: AppState, wxyz: Sequence[float], pivot: Sequence[float] | None = None) -> int:
    """Rotate the selection by ``wxyz`` about ``pivot`` (default: each frame's selection centroid)."""
    return state.apply_to_selection(
        "Rotate", lambda g, m: ops.rotate(g, m, wxyz, _selection_centroid(g, m) if pivot is None else pivot)
    )


def rigid_move(state: AppState, wxyz: Sequence[float], pivot: Sequence[float], offset: Sequence[float]) -> int:
    """Rotate the selection by ``wxyz`` about ``pivot``, then move it by ``offset``: one undoable edit."""
    off = [float(v) for v in offset]
    return state.apply_to_selection("Move (gizmo)", lambda g, m: ops.translate(ops.rotate(g, m, wxyz, pivot), m, off))


def scale(state: AppState, factor: float, pivot: Sequence[float] | None = None) -> int:
    if not factor > 0:
        raise EditError(f"scale factor must be positive, got {factor}")
    return state.apply_to_selection(
        f"Scale x{factor:g}", lambda g, m: ops.scale(g, m, factor, _selection_centroid(g, m) if pivot is None else pivot)
    )


def _colour_inverse(matrix: Sequence[Sequence[float]], offset: Sequence[float]):
    """Approximate inverse of a colour edit ``rgb' = A rgb + v`` as :mod:`lyra.edit.ops` applies it (base colour
    through rgb, higher SH bands by ``A``), for the undo history's compact storage; None when ``A`` is singular."""
    a = torch.tensor(matrix, dtype=torch.float64)
    if abs(float(torch.linalg.det(a))) < 1e-9:
        return None
    a_inv = torch.linalg.inv(a)
    shift = (a @ torch.full((3,), 0.5, dtype=torch.float64) + torch.tensor(offset, dtype=torch.float64) - 0.5) / SH_C0

    def inverse(rows: dict) -> dict:
        sh = rows["sh"].to(torch.float64)  # [M, K, 3] (a new tensor: shifted in place)
        sh[:, 0] -= shift
        # one [M*K, 3] x [3, 3] product: far faster than a batched [M, K, 3] matmul
        return {"sh": (sh.reshape(-1, 3) @ a_inv.T).reshape(sh.shape).to(rows["sh"].dtype)}

    return inverse


def tint(state: AppState, rgb: Sequence[float], strength: float) -> int:
    s = float(strength)
    inverse = _colour_inverse(((1 - s, 0, 0), (0, 1 - s, 0), (0, 0, 1 - s)), [s * float(c) for c in rgb]) \
        if 0.0 <= s < 1.0 and len(rgb) == 3 else None
    return state.apply_to_selection(f"Tint {strength:.2g}", lambda g, m: ops.tint(g, m, rgb, strength), inverse)


def brightness(state: AppState, factor: float) -> int:
    f = float(factor)
    inverse = _colour_inverse(((f, 0, 0), (0, f, 0), (0, 0, f)), (0, 0, 0)) if f > 0 else None
    return state.apply_to_selection(f"Brightness x{factor:g}", lambda g, m: ops.brightness(g, m, factor), inverse)


def saturation(state: AppState, factor: float) -> int:
    f = float(factor)
    w = ops.LUMINANCE_WEIGHTS
    matrix = [[(1 - f) * w[j] + (f if i == j else 0.0) for j in range(3)] for i in range(3)]
    return state.apply_to_selection(f"Saturation x{factor:g}", lambda g, m: ops.saturation(g, m, factor),
                                    _colour_inverse(matrix, (0, 0, 0)) if f >= 0 else None)


def simplify(state: AppState, target: str, progress=None) -> list[int]:
    """Merge neighbouring splats (:func:`lyra.edit.simplify.simplify`) of each frame in scope down to
    ``target`` ("500000" or "25%" of the frame's live splats); one undoable edit."""
    from lyra.edit.simplify import parse_target
    from lyra.edit.simplify import simplify as merge

    return state.replace_splats("Simplify", lambda g, p: merge(g, parse_target(target, len(g)), progress=p), progress)

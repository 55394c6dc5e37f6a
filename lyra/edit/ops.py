"""Edit operations: each returns a new :class:`Gaussians` and never mutates its input.

``mask [N]`` (bool) picks the splats an operation affects; the others are
left as they are. Attributes an operation does not change are shared with
the input, not copied (treat Gaussians as immutable values). Geometry
arguments may be tensors, numpy arrays or sequences. Rotations are
(w, x, y, z) quaternions.

Colour operations act on each splat's whole colour function
``c(d) = 0.5 + sum_k sh[k] Y_k(d)`` (before the renderer's clamp), so base
colour and view-dependent sheen change consistently:

* ``tint``:       ``c' = (1 - s) c + s * rgb``  (mix towards a colour; sheen fades by ``1 - s``)
* ``brightness``: ``c' = f * c``                (sheen scales by ``f``)
* ``saturation``: ``c' = L + f (c - L)`` with ``L`` the Rec. 709 luminance of ``c``
  (a 3x3 linear map on the channels; it maps grey 0.5 to itself, so it applies
  to every SH band as is)

The DC band goes through :func:`lyra.scene.sh.rgb_to_sh_dc` /
:func:`~lyra.scene.sh.sh_dc_to_rgb`; higher bands are linear in ``c`` and get
the linear part of the same map. Results are not clamped: opacity and scale
are untouched, colours may leave [0, 1] (the renderer clamps).

Cropping and deleting are ``g[mask]`` and ``g[~mask]`` (``Gaussians.__getitem__``).

Errors: :class:`lyra.errors.EditError` for a mask of the wrong length or
an argument out of range.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.edit.args import as_mask, as_vector
from lyra.edit.sh_rotation import rotate_sh
from lyra.errors import EditError
from lyra.scene.gaussians import Gaussians, normalize_quats, quats_to_rotmats
from lyra.scene.sh import rgb_to_sh_dc, sh_dc_to_rgb

# Rec. 709 / sRGB luminance weights.
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)

Vector = Tensor | Sequence[float]


def _selected_rows(g: Gaussians, mask: Tensor) -> Tensor:  # mask [N] bool -> [M] int64 indices
    return as_mask(mask, len(g)).to(g.device).nonzero().squeeze(1)


def _update_rows(values: Tensor, rows: Tensor, fn) -> Tensor:  # values [N, ...], rows [M]
    """A copy of ``values`` with ``values[rows]`` replaced by ``fn(values[rows])``.

    Only the selected rows are computed on (a selection is often a small part of a
    million-splat scene); the rest is one copy. (``clone`` + in-place
    ``index_copy_`` measured faster than out-of-place ``index_copy``.)
    """
    return values.clone().index_copy_(0, rows, fn(values[rows]))


def quat_multiply(a: Tensor, b: Tensor) -> Tensor:  # [..., 4] x [..., 4] -> [..., 4], (w, x, y, z)
    """Hamilton product ``a * b`` (rotation ``b`` first, then ``a``)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


# ----------------------------------------------------------------- geometry
def translate(g: Gaussians, mask: Tensor, offset: Vector) -> Gaussians:  # mask [N], offset [3]
    """Move the selected splats by ``offset``."""
    rows = _selected_rows(g, mask)
    offset = as_vector(offset, g.means, 3, "offset")
    return g.replace(means=_update_rows(g.means, rows, lambda m: m + offset))


def rotate(g: Gaussians, mask: Tensor, wxyz: Vector, pivot: Vector) -> Gaussians:  # mask [N], wxyz [4], pivot [3]
    """Rotate the selected splats about ``pivot``: centres, orientations and view-dependent SH."""
    rows = _selected_rows(g, mask)
    quat = normalize_quats(as_vector(wxyz, g.quats, 4, "rotation"))
    if float(quat.norm()) == 0.0:
        raise EditError("rotation quaternion must be non-zero")
    pivot = as_vector(pivot, g.means, 3, "pivot")
    rot = quats_to_rotmats(quat)  # [3, 3]
    means = _update_rows(g.means, rows, lambda m: (m - pivot) @ rot.T + pivot)
    quats = _update_rows(g.quats, rows, lambda q: quat_multiply(quat.expand_as(q), q))
    sh = _update_rows(g.sh, rows, lambda c: rotate_sh(c, rot)) if g.sh_degree > 0 else g.sh
    return g.replace(means=means, quats=quats, sh=sh)


def scale(g: Gaussians, mask: Tensor, factor: float, pivot: Vector) -> Gaussians:  # mask [N], pivot [3]
    """Scale the selected splats uniformly about ``pivot`` (centres and sizes); ``factor > 0``."""
    rows = _selected_rows(g, mask)
    factor = float(factor)
    if not factor > 0:
        raise EditError(f"scale factor must be positive, got {factor}")
    pivot = as_vector(pivot, g.means, 3, "pivot")
    means = _update_rows(g.means, rows, lambda m: (m - pivot) * factor + pivot)
    return g.replace(means=means, scales=_update_rows(g.scales, rows, lambda s: s * factor))


# -------------------------------------------------------------------- colour
def _recolor(g: Gaussians, mask: Tensor, dc_rgb_fn, linear_rows: Tensor | float) -> Gaussians:
    """Apply ``rgb -> dc_rgb_fn(rgb)`` to the base colour and ``linear_rows`` to higher bands.

    ``linear_rows`` is a scalar or a ``[3, 3]`` channel matrix ``A`` (``c' = A c``).
    """

    def recolor_rows(sh: Tensor) -> Tensor:  # [M, K, 3]
        rest = sh[:, 1:]  # [M, K-1, 3]
        new_rest = rest @ linear_rows.T if isinstance(linear_rows, Tensor) else rest * linear_rows
        new_dc = rgb_to_sh_dc(dc_rgb_fn(sh_dc_to_rgb(sh[:, 0])))
        return torch.cat([new_dc.unsqueeze(1), new_rest], dim=1)

    return g.replace(sh=_update_rows(g.sh, _selected_rows(g, mask), recolor_rows))


def tint(g: Gaussians, mask: Tensor, rgb: Vector, strength: float) -> Gaussians:  # mask [N], rgb [3]
    """Mix the selected splats' colour towards ``rgb`` by ``strength`` in [0, 1]."""
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise EditError(f"tint strength must be in [0, 1], got {strength}")
    target = as_vector(rgb, g.sh, 3, "tint colour")
    return _recolor(g, mask, lambda c: (1.0 - strength) * c + strength * target, 1.0 - strength)


def brightness(g: Gaussians, mask: Tensor, factor: float) -> Gaussians:  # mask [N]
    """Multiply the selected splats' colour by ``factor >= 0``."""
    factor = float(factor)
    if not factor >= 0:
        raise EditError(f"brightness factor must be non-negative, got {factor}")
    return _recolor(g, mask, lambda c: factor * c, factor)


def saturation(g: Gaussians, mask: Tensor, factor: float) -> Gaussians:  # mask [N]
    """Scale the selected splats' colour saturation: 0 -> grey, 1 -> unchanged, > 1 -> more vivid."""
    factor = float(factor)
    if not factor >= 0:
        raise EditError(f"saturation factor must be non-negative, got {factor}")
    weights = torch.tensor(LUMINANCE_WEIGHTS, dtype=g.sh.dtype, device=g.device)
    # c' = (1 - f) * (w . c) * 1 + f * c  ==  A c  with  A = (1 - f) 1 w^T + f I
    matrix = (1.0 - factor) * weights.expand(3, 3) + factor * torch.eye(3, dtype=g.sh.dtype, device=g.device)
    return _recolor(g, mask, lambda c: c @ matrix.T, matrix)

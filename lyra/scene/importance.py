"""How much a splat paints, view-independently: ``opacity x footprint area``, in log space.

``importance = opacity * (s_x s_y s_z)^(2/3)`` (opacity times the area of a sphere
of the same volume): the viewer's splat budget sends the most important splats
first. It is computed in log space, so that it can come straight from a file's
raw columns (logit opacity, log scales) without activating anything
(:class:`lyra.scene.formats.ply.PlyRows`) or from activated Gaussians; the two
agree up to float rounding.
"""

from __future__ import annotations

import numpy as np

from lyra.scene.gaussians import Gaussians


def log_importance(
    log_opacities: np.ndarray,  # [N]
    log_scales: np.ndarray,  # [N, 3]
) -> np.ndarray:  # [N] float32
    """``log(opacity) + 2/3 * sum(log scales)``; NaN inputs give NaN (callers treat NaN as most important,
    so an invalid splat is read and reported rather than silently skipped)."""
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.asarray(log_scales, np.float32).sum(axis=1, dtype=np.float32)
        out *= np.float32(2.0 / 3.0)
        out += np.asarray(log_opacities, np.float32)
    return out


def log_sigmoid(logits: np.ndarray) -> np.ndarray:  # [N] float32
    """``log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|))``, stable for large ``|x|``
    (numpy's ``logaddexp`` gives the same, measured ~10x slower on 2M values)."""
    x = np.asarray(logits, np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.abs(x)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.log1p(out, out=out)
        return np.minimum(x, np.float32(0)) - out


def gaussians_log_importance(gaussians: Gaussians) -> np.ndarray:  # [N] float32
    """:func:`log_importance` of activated Gaussians."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return log_importance(np.log(gaussians.opacities.detach().float().cpu().numpy()),
                              np.log(gaussians.scales.detach().float().cpu().numpy()))

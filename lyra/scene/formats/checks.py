"""Checks every reader applies at the file boundary.

* :func:`reject_or_drop_invalid`: NaN/Inf values or (near-)zero quaternions either
  raise :class:`SceneFileError` or, with ``drop_invalid=True``, are dropped
  with a :class:`SceneFileWarning` giving the count.
* :func:`warn_activation_space`: raw file values that look as if someone
  already applied the activations (opacities all in [0, 1], scales all large
  and positive) give a :class:`SceneFileWarning`; ``lyra info`` shows these.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from pathlib import Path

import torch

from lyra.errors import SceneFileError
from lyra.scene.gaussians import MIN_QUAT_NORM, Gaussians

# What reading one member of a hostile zip can raise: a bad header or CRC (BadZipFile), a ZIP64 member without
# ZIP64 (LargeZipFile), a corrupt deflate stream (zlib.error), an encrypted member (RuntimeError), an unknown
# compression method (NotImplementedError), a truncated stream (EOFError), and OSError/ValueError from reads
# past a lying header. Readers turn these into SceneFileError without quoting the member's content.
ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, RuntimeError, NotImplementedError,
                     EOFError, OSError, ValueError)

# A log-scale of 5 is a standard deviation of ~150 scene units: larger than any
# sane splat, so a file whose *smallest* log-scale exceeds this stores linear scales.
SUSPICIOUS_MIN_LOG_SCALE = 5.0


class SceneFileWarning(UserWarning):
    """A scene file loaded, but something in it looks wrong (or was dropped)."""


def _probably_all_finite(values: torch.Tensor) -> bool:
    """True when every value is finite, by one dot product (NaN and Inf propagate into the sum of squares).

    False also for finite values whose squares overflow; the exact per-splat check then runs.
    """
    flat = values.reshape(-1).float()
    return not flat.numel() or bool(torch.isfinite(torch.dot(flat, flat)))


def reject_or_drop_invalid(gaussians: Gaussians, path: Path, drop_invalid: bool) -> Gaussians:
    """Return ``gaussians`` without invalid splats, or raise SceneFileError naming the count."""
    g = gaussians
    if (all(_probably_all_finite(t) for t in (g.means, g.quats, g.scales, g.opacities, g.sh))
            and (not len(g) or float(g.quats.abs().amax(-1).min()) >= MIN_QUAT_NORM)):
        return gaussians  # the common case, proved without building a per-splat mask
    bad = gaussians.invalid_mask()
    count = int(bad.sum())
    if count == 0:
        return gaussians
    if not drop_invalid:
        first = int(bad.nonzero()[0])
        raise SceneFileError(
            path,
            "finite values and non-(near-)zero quaternions in every splat",
            f"{count} of {len(gaussians)} splats with NaN/Inf values or (near-)zero quaternions (first at index {first}); "
            "load with drop_invalid=True to drop them",
        )
    warnings.warn(
        f"{path}: dropped {count} of {len(gaussians)} splats with NaN/Inf values or (near-)zero quaternions",
        SceneFileWarning,
        stacklevel=3,
    )
    return gaussians[~bad]


def warn_activation_space(path: Path, opacity_logit_range: tuple[float, float] | None, min_log_scale: float | None) -> None:
    """Warn when raw PLY values look already activated.

    ``opacity_logit_range``: (min, max) of the file's opacity values over all
    splats (None for fewer than two splats); ``min_log_scale``: smallest
    scale value in the file (None when empty). NaNs are ignored here (the
    invalid-value check reports them).
    """
    if opacity_logit_range is not None:
        lo, hi = opacity_logit_range
        if 0.0 <= lo and hi <= 1.0:
            warnings.warn(
                f"{path}: every opacity value lies in [0, 1] with none negative; the file should hold logits, "
                "these look already activated (sigmoid applied)",
                SceneFileWarning,
                stacklevel=3,
            )
    if min_log_scale is not None and min_log_scale > SUSPICIOUS_MIN_LOG_SCALE:
        warnings.warn(
            f"{path}: every scale value is > {SUSPICIOUS_MIN_LOG_SCALE} (smallest {min_log_scale:.3g}); the file should "
            "hold log-scales, these look like linear scales",
            SceneFileWarning,
            stacklevel=3,
        )

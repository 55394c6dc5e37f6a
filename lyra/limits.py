"""Decode budgets: what one file may cost in memory, checked from its header BEFORE anything is allocated.

A tiny file can claim gigabytes: an SPZ header saying 8M splats, a SOG image
saying 134M pixels, a video of 3000 black frames, a ``.npy`` header saying
100000 x 100000. Every reader asks this module before it allocates:

* :func:`check_splats` ``(where, count, sh_degree)``: the splat count against
  ``max_splats`` and the decoded Gaussians (:func:`splat_bytes`) against
  ``max_decoded_bytes``;
* :func:`check_decoded` ``(where, nbytes, what)``: any other decoded array
  (frames x height x width x channels, a depth map, an image) against
  ``max_decoded_bytes``;
* :func:`check_image_pixels` ``(where, width, height)``: an image's pixel count,
  read from its header, against ``max_image_pixels``;
* :func:`check_ratio` ``(where, expanded, compressed, what)``: every compressed
  stream (zip members of any method, SPZ's gzip/zstd streams, SOG's WebP
  images) against ``max_compression_ratio``. Real splat data compresses a few
  times; a stream past the ratio is a decompression bomb.

A reader that still runs out of memory (a process with less memory than the
budget, e.g. under an address-space limit) raises :func:`out_of_memory_error`'s
error instead of a MemoryError.

The limits are process-wide (one :class:`DecodeLimits`, read with
:func:`current`, changed with :func:`set_limits`); the viewer sets them from
``--max-splats`` and ``--max-decoded-mb``. Defaults: 2^25 (33.5M) splats,
4096 MiB decoded, 64 megapixels per image, 200:1 for streams over 1 MiB.
Every refusal is a :class:`lyra.errors.DecodeBudgetError` (a SceneFileError:
callers that catch scene errors catch it too) whose message names the limit
and how to raise it.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from lyra.errors import DecodeBudgetError

DEFAULT_MAX_SPLATS = 1 << 25
DEFAULT_MAX_DECODED_MB = 4096
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
DEFAULT_MAX_COMPRESSION_RATIO = 200
RATIO_CHECK_ABOVE_BYTES = 1 << 20  # small streams (headers, constant test scenes) compress arbitrarily well
_RAISE_SPLATS = "raise it with the viewer's --max-splats or lyra.limits.set_limits(max_splats=...)"
_RAISE_DECODED = "raise it with the viewer's --max-decoded-mb or lyra.limits.set_limits(max_decoded_mb=...)"


@dataclasses.dataclass(frozen=True)
class DecodeLimits:
    """The process-wide decode budget (see the module docstring)."""

    max_splats: int = DEFAULT_MAX_SPLATS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_MB << 20
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_compression_ratio: float = DEFAULT_MAX_COMPRESSION_RATIO


_lock = threading.Lock()
_limits = DecodeLimits()


def current() -> DecodeLimits:
    """The limits in force now."""
    return _limits


def set_limits(*, max_splats: int | None = None, max_decoded_mb: float | None = None,
               max_image_pixels: int | None = None, max_compression_ratio: float | None = None) -> DecodeLimits:
    """Change some limits for the whole process (None keeps one); returns the previous limits.

    Raises :class:`lyra.errors.ConfigError` for a value that is not positive.
    """
    from lyra.errors import ConfigError

    global _limits
    given = {"max_splats": max_splats, "max_decoded_mb": max_decoded_mb, "max_image_pixels": max_image_pixels,
             "max_compression_ratio": max_compression_ratio}
    for name, value in given.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
            raise ConfigError(f"{name} must be a positive number, found {value!r}")
    with _lock:
        previous = _limits
        changes = {k: v for k, v in {
            "max_splats": None if max_splats is None else int(max_splats),
            "max_decoded_bytes": None if max_decoded_mb is None else int(max_decoded_mb * (1 << 20)),
            "max_image_pixels": None if max_image_pixels is None else int(max_image_pixels),
            "max_compression_ratio": None if max_compression_ratio is None else float(max_compression_ratio),
        }.items() if v is not None}
        _limits = dataclasses.replace(previous, **changes)
    return previous


def splat_bytes(count: int, sh_degree: int = 0) -> int:
    """Bytes of ``count`` decoded splats in memory: float32 means, quats, scales, opacity and ``(d+1)^2 x 3`` SH."""
    return int(count) * 4 * (3 + 4 + 3 + 1 + 3 * (max(int(sh_degree), 0) + 1) ** 2)


def _mib(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):,.0f} MiB"


def check_splats(where: str | os.PathLike | None, count: int, sh_degree: int = 0) -> None:
    """Refuse ``count`` splats of ``sh_degree`` over ``max_splats`` or the decoded budget (DecodeBudgetError)."""
    limits = _limits
    if count > limits.max_splats:
        raise DecodeBudgetError(where, f"at most {limits.max_splats:,} splats ({_RAISE_SPLATS})", f"{count:,} declared")
    check_decoded(where, splat_bytes(count, sh_degree), f"{count:,} splats of SH degree {sh_degree}")


def check_decoded(where: str | os.PathLike | None, nbytes: int, what: str) -> None:
    """Refuse a decode of ``nbytes`` over ``max_decoded_bytes``; ``what`` says what was declared (DecodeBudgetError)."""
    limit = _limits.max_decoded_bytes
    if nbytes > limit:
        raise DecodeBudgetError(where, f"at most {_mib(limit)} decoded ({_RAISE_DECODED})",
                                f"{what}: {_mib(nbytes)} once decoded")


def check_image_pixels(where: str | os.PathLike | None, width: int, height: int, what: str = "an image") -> None:
    """Refuse an image whose header declares more than ``max_image_pixels`` (DecodeBudgetError)."""
    limit = _limits.max_image_pixels
    if width * height > limit:
        raise DecodeBudgetError(where, f"{what} of at most {limit / 1e6:g} megapixels",
                                f"{width} x {height} ({width * height / 1e6:.1f} megapixels) in its header")


def check_ratio(where: str | os.PathLike | None, expanded: int, compressed: int, what: str) -> None:
    """Refuse a stream of ``compressed`` bytes expanding to ``expanded`` past the ratio (a decompression bomb)."""
    ratio = _limits.max_compression_ratio
    if expanded > RATIO_CHECK_ABOVE_BYTES and expanded > ratio * max(compressed, 1):
        raise DecodeBudgetError(where, f"{what} compressed at most {ratio:g}:1",
                                f"{expanded:,} bytes from {compressed:,} (a decompression bomb?)")


def out_of_memory_error(where: str | os.PathLike | None, what: str) -> DecodeBudgetError:
    """The error to raise when a decode ran out of memory anyway (a MemoryError inside a reader)."""
    return DecodeBudgetError(where, f"{what} that fits in this process's memory",
                             "an allocation that failed (lower --max-decoded-mb, or free memory)")

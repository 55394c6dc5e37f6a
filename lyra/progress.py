"""One progress and cancel protocol for every long library call.

A long call takes ``progress: Progress | None`` and calls it as
``progress(fraction, text)`` with ``fraction`` in 0..1, often enough that a
user sees it move (every frame, every step, every file). Cancelling is the
callback's job: a caller that wants to stop the work raises :class:`Cancelled`
from inside its callback, and the exception travels up through the library
unchanged. The library never swallows :class:`Cancelled` and leaves no
partial output behind (writes are atomic).

Adapters: the CLI wraps a tqdm bar (``lyra.cli.progress_bar``), the viewer's
``Job`` is itself a ``Progress``. Nested work maps its 0..1 onto a slice of
the caller's range with :func:`subrange`; staged work with :func:`stages`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lyra.errors import LyraError

Progress = Callable[[float, str], None]  # progress(fraction in 0..1, text)


class Cancelled(LyraError):
    """The caller cancelled a long call (raised from its progress callback)."""


def report(progress: Progress | None, fraction: float, text: str = "") -> None:
    """Call ``progress`` if there is one, with ``fraction`` clamped to 0..1."""
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), text)


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"2 h 05 min"``: a duration as people read an estimate."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def subrange(progress: Progress | None, start: float, end: float, prefix: str = "") -> Progress | None:
    """A callback that maps 0..1 onto ``start..end`` of ``progress`` (``None`` stays ``None``).

    ``prefix`` is put before each text, e.g. ``"trajectory 2/6: "``.
    """
    if progress is None:
        return None

    def mapped(fraction: float, text: str = "") -> None:
        report(progress, start + (end - start) * min(max(float(fraction), 0.0), 1.0), prefix + text)

    return mapped


def stages(progress: Progress | None, weights: Sequence[float]) -> list[Progress | None]:
    """Split ``progress`` into consecutive sub-ranges, one per stage, sized by ``weights``."""
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise LyraError(f"stage weights must be >= 0 with a positive sum, got {list(weights)}")
    bounds, acc = [], 0.0
    for w in weights:
        bounds.append((acc / total, (acc + w) / total))
        acc += w
    return [subrange(progress, a, b) for a, b in bounds]

"""The viewer's display policy: how many splats the browser may receive now, and which ones.

A 2M-splat frame is 64 MB of viser buffer and a client-side sort per frame;
while playing that cannot keep up, and even paused a weak GPU stalls. The
*splat budget* (a count of splats, not bytes: the buffer cache's byte budget is
:attr:`viewer.frame_buffers.FrameBufferCache.budget_bytes`) is a hard cap on
what the browser receives, summed over the visible layers:

- ``playing`` (default 400k): while a 4D scene plays, and right after a frame
  change (scrubbing, stepping) until the view has been idle for a second;
- ``paused`` (default 1.5M): paused and idle;
- full detail, a separate explicit setting (on by default) with its own cap
  (default 2M): paused and idle, up to ``full_detail_cap`` splats instead of
  the paused budget.

Above the cap the client gets the splats of highest importance
``opacity * (s_x s_y s_z)^(2/3)`` (:mod:`lyra.scene.importance`), chosen by a
partial selection (no full sort; ties keep index order, so the subset is
deterministic). Only what is *sent* changes: the state, selections, edits
and exports always act on every splat.
"""

from __future__ import annotations

import dataclasses

import numpy as np

DEFAULT_PAUSED_BUDGET = 1_500_000
DEFAULT_PLAYING_BUDGET = 400_000
DEFAULT_FULL_DETAIL_CAP = 2_000_000


@dataclasses.dataclass
class DisplayPolicy:
    """What the browser may receive (module docstring). Held by :class:`viewer.state.AppState`, which
    changes it only through its methods, under its lock."""

    paused: int = DEFAULT_PAUSED_BUDGET
    playing: int = DEFAULT_PLAYING_BUDGET
    full_detail: bool = True
    full_detail_cap: int = DEFAULT_FULL_DETAIL_CAP
    is_playing: bool = False
    settled: bool = True  # paused and idle (no frame change for a while)

    def splat_budget(self) -> int:
        """The cap on splats sent now, over all visible layers."""
        if self.is_playing or not self.settled:
            return self.playing
        return self.full_detail_cap if self.full_detail else self.paused

    def reason(self) -> str:
        """Which of the settings :meth:`splat_budget` comes from (for the status line)."""
        if self.is_playing:
            return "playing budget"
        if not self.settled:
            return "playing budget until idle"
        return "full detail cap" if self.full_detail else "paused budget"


def split_budget(budget: int, live: list[int]) -> list[int]:
    """Splats each layer may send: all of its ``live`` splats when they fit, else shares of ``budget``
    proportional to ``live`` (the remainder to the largest layers); the shares never sum above ``budget``."""
    total = sum(live)
    if total <= budget:
        return list(live)
    shares = [budget * n // total for n in live]
    for i in sorted(range(len(live)), key=lambda i: -live[i])[: budget - sum(shares)]:
        shares[i] += 1
    return [min(s, n) for s, n in zip(shares, live, strict=True)]


def top_splats(
    scores: np.ndarray,  # [N] float32 log importance (NaN ranks first)
    deleted: np.ndarray,  # [N] bool
    budget: int,
) -> np.ndarray | None:  # [M] int64 increasing, M = budget
    """Indices of the ``budget`` highest-scoring splats not ``deleted``; None when every live splat fits.

    A partial selection (``np.partition``, linear time) finds the threshold; splats above it are
    taken, then ties at it in index order, so the result is fully determined by its inputs.
    """
    live = len(deleted) - int(np.count_nonzero(deleted))
    if live <= budget:
        return None
    ranked = np.nan_to_num(scores, nan=np.inf, posinf=np.inf, neginf=-np.finfo(np.float32).max)
    if deleted.any():
        ranked = np.where(deleted, -np.inf, ranked)
    if budget <= 0:
        return np.zeros(0, np.int64)
    threshold = np.partition(ranked, len(ranked) - budget)[len(ranked) - budget]
    keep = ranked > threshold
    missing = budget - int(np.count_nonzero(keep))
    keep[np.flatnonzero(ranked == threshold)[:missing]] = True
    return np.flatnonzero(keep)

"""Packed viser buffers per frame, cached under a byte budget (least recently used dropped first).

A frame has two buffers: the *base* (every splat, DC colours), packed once per
Gaussians object, and the *display* one derived from it (SH baked for a view,
selection tinted, soft-deleted splats dropped), rebuilt only when the frame's
revision or the bake viewpoint changes. Above the splat budget a frame is
instead *cut*: only the budget's most important splats are read (for a lazy
frame, straight from its file's rows) and packed, and the ranking is kept per
frame. A frame switch then costs one send.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from lyra.scene import Gaussians
from lyra.scene.importance import gaussians_log_importance
from lyra.scene.lazy_frames import RowReader
from lyra.scene.sh import eval_sh
from viewer.splat_budget import top_splats
from viewer.splat_buffer import RGBA_WORD, pack_gaussians, pack_rgba_words, tint_rgba_words

SELECTION_TINT = (255, 64, 200)
DEFAULT_BUFFER_CACHE_BYTES = 2 * 1024**3  # the buffer cache's byte budget (the splat budget is a count)
CUTS_PER_FRAME = 2


def display_from_base(
    base: np.ndarray,  # [N, 8] uint32, every splat
    gaussians: Gaussians,
    deleted: Tensor,  # [N] bool
    selected: Tensor,  # [N] bool
    view_position: tuple[float, float, float] | None,  # bake SH for a camera here; None keeps DC colours
) -> np.ndarray:  # [M, 8] uint32, M = N - deleted
    buffer = base
    if view_position is not None:
        with torch.no_grad():
            rgb = eval_sh(gaussians.sh.float(), gaussians.means.float() - torch.tensor(view_position, dtype=torch.float32))
        buffer = base.copy()
        buffer[:, RGBA_WORD] = pack_rgba_words(rgb, gaussians.opacities)
    if bool(selected.any()):
        if buffer is base:
            buffer = base.copy()
        sel = selected.numpy()
        buffer[sel, RGBA_WORD] = tint_rgba_words(buffer[sel, RGBA_WORD], SELECTION_TINT)
    if bool(deleted.any()):
        buffer = buffer[~deleted.numpy()]
    return buffer


class GaussiansRows:
    """An in-memory Gaussians set as a :class:`lyra.scene.lazy_frames.RowReader` (what a lazy frame's
    file gives), so every frame is ranked and cut by the same code."""

    def __init__(self, gaussians: Gaussians):
        self.gaussians = gaussians

    def __len__(self) -> int:
        return len(self.gaussians)

    def log_importance(self) -> np.ndarray:  # [N] float32
        return gaussians_log_importance(self.gaussians)

    def read(self, rows: np.ndarray) -> Gaussians:
        return self.gaussians[torch.from_numpy(rows)]

    def bounds(self) -> tuple[Tensor, Tensor]:
        return self.gaussians.bounds()


def cut_buffer(
    rows: RowReader,
    scores: np.ndarray | None,  # [N] log importance; None when every live splat fits
    deleted: Tensor,  # [N] bool
    selected: Tensor,  # [N] bool
    view_position: tuple | None,
    budget: int,
) -> np.ndarray:  # [min(budget, live), 8] uint32
    """The display buffer of the ``budget`` most important live splats: only those are read and packed."""
    chosen = top_splats(scores, deleted.numpy(), budget) if scores is not None else None
    if chosen is None:
        chosen = np.flatnonzero(~deleted.numpy())
    subset = rows.read(chosen)
    return display_from_base(pack_gaussians(subset), subset, torch.zeros(len(chosen), dtype=torch.bool),
                             selected[torch.from_numpy(chosen)], view_position)


def _source(rows_or_gaussians) -> weakref.ref:
    """A weak reference to what a cached buffer was made from (a Gaussians set or a file's row reader).

    Weak, so the cache never keeps a lazy frame's splats alive past its sequence's own byte budget.
    """
    if isinstance(rows_or_gaussians, GaussiansRows):
        rows_or_gaussians = rows_or_gaussians.gaussians
    return weakref.ref(rows_or_gaussians)


def _made_from(ref: weakref.ref | None, rows_or_gaussians) -> bool:
    return ref is not None and ref() is not None and ref() is _source(rows_or_gaussians)()


@dataclasses.dataclass
class _Entry:
    base_of: weakref.ref | None = None
    base: np.ndarray | None = None
    display_key: object = None
    display: np.ndarray | None = None
    ranked: weakref.ref | None = None  # what ``scores`` rank (the ranking is cached per frame)
    scores: np.ndarray | None = None  # [N] float32 log importance
    cuts_of: weakref.ref | None = None  # what the cuts were read from
    cuts: OrderedDict = dataclasses.field(default_factory=OrderedDict)  # cut key -> buffer cut to a budget

    @property
    def nbytes(self) -> int:
        total = sum(c.nbytes for c in self.cuts.values()) + (self.scores.nbytes if self.scores is not None else 0)
        if self.base is None:
            return total
        return total + self.base.nbytes + (self.display.nbytes if self.display is not None and self.display is not self.base else 0)


class FrameBufferCache:
    """Not thread-safe by itself: :class:`viewer.state.AppState` calls it under its lock.

    Per frame: the full display buffer (edits of in-memory frames re-derive it
    cheaply), the ranking, and up to :data:`CUTS_PER_FRAME` buffers cut to a
    budget (the playing one and the settled one), all under ``budget_bytes``.
    """

    def __init__(self, budget_bytes: int = DEFAULT_BUFFER_CACHE_BYTES):
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()

    def display(self, key: tuple[str, int], gaussians: Gaussians, deleted: Tensor, selected: Tensor,
                revision: int, view_position: tuple | None) -> np.ndarray:
        entry = self._entries.setdefault(key, _Entry())
        self._entries.move_to_end(key)
        if not _made_from(entry.base_of, gaussians):
            entry.base, entry.base_of, entry.display_key = pack_gaussians(gaussians), _source(gaussians), None
        display_key = (revision, view_position)
        if entry.display_key != display_key:
            entry.display = display_from_base(entry.base, gaussians, deleted, selected, view_position)
            entry.display_key = display_key
            self._evict()
        return entry.display

    def cut(self, key: tuple[str, int], rows: RowReader, cut_key: tuple) -> np.ndarray | None:
        """A cached cut of ``rows`` for ``cut_key`` = (revision, view position, budget), or None."""
        entry = self._entries.get(key)
        if entry is None or not _made_from(entry.cuts_of, rows) or cut_key not in entry.cuts:
            return None
        self._entries.move_to_end(key)
        entry.cuts.move_to_end(cut_key)
        return entry.cuts[cut_key]

    def scores(self, key: tuple[str, int], rows: RowReader) -> np.ndarray | None:
        entry = self._entries.get(key)
        return entry.scores if entry is not None and _made_from(entry.ranked, rows) else None

    def store_cut(self, key: tuple[str, int], rows: RowReader, scores: np.ndarray | None, cut_key: tuple,
                  cut: np.ndarray) -> None:
        """Keep a cut made by :func:`cut_buffer` (maybe on another thread) and the ranking it used."""
        entry = self._entries.setdefault(key, _Entry())
        self._entries.move_to_end(key)
        if scores is not None:
            entry.ranked, entry.scores = _source(rows), scores
        if not _made_from(entry.cuts_of, rows):
            entry.cuts_of, entry.cuts = _source(rows), OrderedDict()
        entry.cuts[cut_key] = cut
        while len(entry.cuts) > CUTS_PER_FRAME:
            entry.cuts.popitem(last=False)
        self._evict()

    def drop_layer(self, name: str) -> None:
        for key in [k for k in self._entries if k[0] == name]:
            del self._entries[key]

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def _evict(self) -> None:
        total = self.nbytes
        while total > self.budget_bytes and len(self._entries) > 1:  # the newest entry always stays
            _, old = self._entries.popitem(last=False)
            total -= old.nbytes

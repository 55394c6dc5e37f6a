"""Packed viser buffers per frame, cached under a byte budget (least recently used dropped first).

A frame has two buffers: the *base* (every splat, DC colours), packed once per
Gaussians object, and the *display* one derived from it (SH baked for a view,
selection tinted, soft-deleted splats dropped), rebuilt only when the frame's
revision or the bake viewpoint changes. A frame switch then costs one send.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import numpy as np
import torch
from torch import Tensor

from lyra.scene import Gaussians
from lyra.scene.sh import eval_sh
from viewer.splat_budget import chosen_splats, importance_order
from viewer.splat_buffer import RGBA_WORD, pack_gaussians, pack_rgba_words, tint_rgba_words

SELECTION_TINT = (255, 64, 200)
DEFAULT_BUDGET_BYTES = 2 * 1024**3


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


def cut_buffer(gaussians: Gaussians, deleted: Tensor, selected: Tensor, view_position: tuple | None, budget: int,
               order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(importance order, display buffer of the budget's most important live splats)``: only those are packed."""
    order = importance_order(gaussians) if order is None else order
    chosen = torch.from_numpy(chosen_splats(order, deleted.numpy(), budget))
    subset = gaussians[chosen]
    cut = display_from_base(pack_gaussians(subset), subset, torch.zeros(len(chosen), dtype=torch.bool),
                            selected[chosen], view_position)
    return order, cut


@dataclasses.dataclass
class _Entry:
    base_of: Gaussians | None = None
    base: np.ndarray | None = None
    display_key: object = None
    display: np.ndarray | None = None
    order_of: Gaussians | None = None  # the splats ``order`` ranks (for the splat budget)
    order: np.ndarray | None = None  # [N] importance order, most important first
    cut_key: object = None
    cut: np.ndarray | None = None  # the display buffer cut to the budget

    @property
    def nbytes(self) -> int:
        total = self.cut.nbytes if self.cut is not None else 0
        if self.base is None:
            return total
        return total + self.base.nbytes + (self.display.nbytes if self.display is not None and self.display is not self.base else 0)


class FrameBufferCache:
    """Not thread-safe by itself: :class:`viewer.state.AppState` calls it under its lock."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple[str, int], _Entry] = OrderedDict()

    def display(self, key: tuple[str, int], gaussians: Gaussians, deleted: Tensor, selected: Tensor,
                revision: int, view_position: tuple | None) -> np.ndarray:
        entry = self._entries.setdefault(key, _Entry())
        self._entries.move_to_end(key)
        if entry.base_of is not gaussians:
            entry.base, entry.base_of, entry.display_key = pack_gaussians(gaussians), gaussians, None
        display_key = (revision, view_position)
        if entry.display_key != display_key:
            entry.display = display_from_base(entry.base, gaussians, deleted, selected, view_position)
            entry.display_key = display_key
            self._evict()
        return entry.display

    def within_budget(self, key: tuple[str, int], gaussians: Gaussians, deleted: Tensor, selected: Tensor,
                      revision: int, view_position: tuple | None, budget: int) -> np.ndarray:
        """The display buffer cut to the ``budget`` most important live splats (all of them when they fit).

        Above the budget only the chosen splats are packed (a 2M-splat frame at a
        400k budget packs 400k rows, not 2M), so a switch costs what is sent.
        """
        live = len(gaussians) - int(deleted.sum())
        if live <= budget:
            return self.display(key, gaussians, deleted, selected, revision, view_position)
        entry = self._entries.setdefault(key, _Entry())
        self._entries.move_to_end(key)
        cut_key = (revision, view_position, budget)
        if entry.order_of is not gaussians or entry.cut_key != cut_key:
            order = entry.order if entry.order_of is gaussians else None
            self.store_cut(key, gaussians, *cut_buffer(gaussians, deleted, selected, view_position, budget, order), cut_key)
        return entry.cut

    def has_cut(self, key: tuple[str, int], gaussians: Gaussians, cut_key: tuple) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.order_of is gaussians and entry.cut_key == cut_key

    def store_cut(self, key: tuple[str, int], gaussians: Gaussians, order: np.ndarray, cut: np.ndarray,
                  cut_key: tuple) -> None:
        """Keep a cut made by :func:`cut_buffer` (maybe on another thread) for ``key``."""
        entry = self._entries.setdefault(key, _Entry())
        entry.order, entry.order_of, entry.cut, entry.cut_key = order, gaussians, cut, cut_key
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

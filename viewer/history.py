"""Undo/redo of edits, storing only what each edit changed; bounded by count and by bytes.

An edit touches some frames. For each it records:

* the ``deleted`` / ``selected`` masks before and after (references: masks are
  replaced, never mutated; 1 byte per splat at most);
* for an attribute edit (move, rotate, scale, recolour: an op of
  :mod:`lyra.edit.ops` applied to the selected rows), a :class:`RowPatch`: the
  selected row indices, the *before* values of those rows, and the op itself.
  Undo writes the before values back; redo re-runs the op (deterministic), so
  neither keeps a copy of a whole tensor. A run of edits on the same rows (20
  colour tweaks of one selection) stores the rows' values once: each later
  patch re-derives its before values by replaying the earlier ops on the first
  patch's rows, which is checked to be bit-exact when the edit is recorded.

Gaussians are never mutated in place, so undo and redo build new tensors and
are exact. :meth:`History.nbytes` counts what the history alone keeps alive.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from lyra.scene.gaussians import Gaussians

MAX_HISTORY = 200
MAX_HISTORY_BYTES = 512 << 20  # beyond this the oldest edits are forgotten (a 1M-splat SH-3 frame is ~236 MiB)
FIELDS = ("means", "quats", "scales", "opacities", "sh")
Op = Callable[[Gaussians, Tensor], Gaussians]  # (gaussians, selected mask [N]) -> gaussians


@dataclasses.dataclass(frozen=True)
class FrameSnapshot:
    deleted: Tensor  # [N] bool, soft-deleted (hidden, dropped at export)
    selected: Tensor  # [N] bool


FrameKey = tuple[str, int]  # (layer name, frame index)


class RowPatch:
    """One attribute edit of one frame: enough to undo it exactly (and redo it) without whole-tensor copies."""

    def __init__(self, rows: Tensor, fields: tuple[str, ...], op: Op, values: dict[str, Tensor] | None,
                 previous: RowPatch | None, after: Gaussians, row_local: bool):
        self.rows = rows  # [M] int32 indices of the rows the op changed (the selection)
        self.fields = fields  # attributes the op replaced; the others are untouched by the whole chain
        self.op = op
        self.values = values  # {field: [M, ...]} before this edit, or None: derived from ``previous``
        self.previous = previous
        self.row_local = row_local  # op on just these rows gives the same values (so a chain can replay it)
        self._after = weakref.ref(after)  # the Gaussians this edit produced, while it is the frame's

    @classmethod
    def record(cls, before: Gaussians, after: Gaussians, selected: Tensor, op: Op,
               previous: RowPatch | None = None) -> RowPatch:
        """The patch for ``after = op(before, selected)``; chains onto ``previous`` when that replays exactly.

        Chaining needs: ``previous`` produced ``before`` (nothing else changed the frame since), the
        same rows and fields, and ``previous``'s op gives the same values on just those rows.
        """
        rows = selected.nonzero().squeeze(1).to(torch.int32)  # [M]
        fields = tuple(f for f in FIELDS if getattr(after, f) is not getattr(before, f))
        index = rows.long()
        replayed = op(_rows(before, index), torch.ones(len(index), dtype=torch.bool))
        row_local = all(torch.equal(getattr(replayed, f), getattr(after, f)[index]) for f in fields)
        if (previous is not None and previous.row_local and previous._after() is before
                and previous.fields == fields and torch.equal(previous.rows, rows)):
            return cls(previous.rows, fields, op, None, previous, after, row_local)
        values = {f: getattr(before, f)[index] for f in fields}  # fancy indexing copies just these rows
        return cls(rows, fields, op, values, None, after, row_local)

    def before_values(self, current: Gaussians) -> dict[str, Tensor]:
        """The changed rows' values before this edit; ``current`` supplies the fields no edit of the chain touched."""
        if self.values is not None:
            return self.values
        earlier = self.previous.before_values(current)
        sub = _rows(current, self.rows.long()).replace(**earlier)
        replayed = self.previous.op(sub, torch.ones(len(self.rows), dtype=torch.bool))
        return {f: getattr(replayed, f) for f in self.fields}

    def undo(self, current: Gaussians) -> Gaussians:
        """``current`` (the state right after this edit) with the changed rows put back."""
        before, rows = self.before_values(current), self.rows.long()
        values = {}
        for field in self.fields:
            tensor = getattr(current, field).clone()
            tensor[rows] = before[field]
            values[field] = tensor
        return current.replace(**values)

    def redo(self, current: Gaussians, selected: Tensor) -> Gaussians:
        after = self.op(current, selected)
        self._after = weakref.ref(after)
        return after

    def tensors(self) -> list[Tensor]:
        return [self.rows, *(self.values or {}).values()]


class ReplacePatch:
    """A whole-frame replacement that changes the splat count (simplify): keeps the sets before and after.

    Costly in bytes (counted by :meth:`History.nbytes`, so the byte bound forgets it early); never chained.
    """

    row_local = False  # RowPatch.record never chains onto it

    def __init__(self, before: Gaussians, after: Gaussians):
        self.before, self.after = before, after

    def undo(self, current: Gaussians) -> Gaussians:
        return self.before

    def redo(self, current: Gaussians, selected: Tensor) -> Gaussians:
        return self.after

    def tensors(self) -> list[Tensor]:
        return [getattr(g, f) for g in (self.before, self.after) for f in FIELDS]


def _rows(g: Gaussians, index: Tensor) -> Gaussians:
    """Rows ``index`` of ``g`` (core fields only: what an edit op reads)."""
    return Gaussians(g.means[index], g.quats[index], g.scales[index], g.opacities[index], g.sh[index])


@dataclasses.dataclass
class EditCommand:
    """One undoable edit: masks before and after, and attribute patches, of each frame it touched."""

    label: str
    before: dict[FrameKey, FrameSnapshot]
    after: dict[FrameKey, FrameSnapshot]
    patches: dict[FrameKey, RowPatch] = dataclasses.field(default_factory=dict)
    timestamp: float = dataclasses.field(default_factory=time.time)

    def touches_layer(self, layer: str) -> bool:
        return any(key[0] == layer for key in self.before)

    def tensors(self) -> list[Tensor]:
        kept = [t for snaps in (self.before, self.after) for s in snaps.values() for t in (s.deleted, s.selected)]
        return kept + [t for patch in self.patches.values() for t in patch.tensors()]


def _storage_bytes(tensors: Iterable[Tensor], exclude: Iterable[Tensor] = ()) -> int:
    """Bytes of the distinct storages behind ``tensors``, not counting those shared with ``exclude``."""
    seen = {t.untyped_storage().data_ptr() for t in exclude}
    total = 0
    for tensor in tensors:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total += storage.nbytes()
    return total


class History:
    """Linear undo/redo stacks; a new command clears the redo stack. At most ``limit`` commands and
    ``max_bytes`` of history-only tensors are kept (the oldest go first)."""

    def __init__(self, limit: int = MAX_HISTORY, max_bytes: int = MAX_HISTORY_BYTES):
        self.limit = limit
        self.max_bytes = max_bytes
        self.done: list[EditCommand] = []
        self.undone: list[EditCommand] = []

    def last_patch(self, key: FrameKey) -> RowPatch | None:
        """The patch of ``key`` in the most recent done command (a later edit may chain onto it)."""
        if self.done and key in self.done[-1].patches:
            return self.done[-1].patches[key]
        return None

    def push(self, command: EditCommand, live: Iterable[Tensor] = ()) -> None:
        """Add ``command``; forget the oldest beyond the count or byte bound (``live``: tensors the scene holds)."""
        self.done.append(command)
        self.undone.clear()
        live = list(live)
        while self.done and (len(self.done) > self.limit or (len(self.done) > 1 and self.nbytes(live) > self.max_bytes)):
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        """Drop the oldest command, and the commands whose patches derive from it (their undo needs it)."""
        dropped = {id(p) for p in self.done.pop(0).patches.values()}

        def derived(command: EditCommand) -> bool:
            return any(p.previous is not None and id(p.previous) in dropped for p in command.patches.values())

        while self.done and derived(self.done[0]):
            dropped |= {id(p) for p in self.done.pop(0).patches.values()}
        kept = []
        for command in reversed(self.undone):  # oldest first: a redo chain hangs off the done stack
            if derived(command):
                dropped |= {id(p) for p in command.patches.values()}
            else:
                kept.append(command)
        self.undone = list(reversed(kept))

    def nbytes(self, live: Iterable[Tensor] = ()) -> int:
        """Bytes of tensors the history keeps alive, excluding storages shared with ``live`` (the scene's own)."""
        return _storage_bytes((t for c in self.done + self.undone for t in c.tensors()), live)

    def pop_undo(self) -> EditCommand | None:
        if not self.done:
            return None
        command = self.done.pop()
        self.undone.append(command)
        return command

    def pop_redo(self) -> EditCommand | None:
        if not self.undone:
            return None
        command = self.undone.pop()
        self.done.append(command)
        return command

    def forget_layer(self, layer: str) -> None:
        """Drop commands that touch a removed layer (others stay undoable: records are per frame and a
        patch only ever derives from one of the same frame)."""
        self.done = [c for c in self.done if not c.touches_layer(layer)]
        self.undone = [c for c in self.undone if not c.touches_layer(layer)]

    def labels(self) -> list[tuple[str, bool]]:
        """``(label, is_done)`` oldest first: done commands, then undone ones (redo order)."""
        return [(c.label, True) for c in self.done] + [(c.label, False) for c in reversed(self.undone)]

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
Inverse = Callable[[dict], dict]  # {field: rows after an op} -> {field: those rows before it, approximately}


@dataclasses.dataclass(frozen=True)
class FrameSnapshot:
    deleted: Tensor  # [N] bool, soft-deleted (hidden, dropped at export)
    selected: Tensor  # [N] bool


FrameKey = tuple[str, int]  # (layer name, frame index)


class RowPatch:
    """One attribute edit of one frame: enough to undo it exactly (and redo it) without whole-tensor copies.

    Patches on the same rows form a chain; its first patch (the base) holds the rows' values from
    before the chain, and later patches re-derive theirs by replaying the ops in between. When every
    op of the chain has an ``inverse`` (the colour edits), the base stores those values as a residual:
    the chain's inverse ops run backwards from the frame's current rows give each value to within
    a few float steps, and one byte per value says how many (values further off are kept whole).
    The residual refers to the chain state the frame is in (``anchor``) and is re-encoded at each
    edit, undo and redo of the chain, when that state is at hand.
    """

    def __init__(self, rows: Tensor, fields: tuple[str, ...], op: Op, inverse: Inverse | None,
                 base: RowPatch | None, after: Gaussians, row_local: bool):
        self.rows = rows  # [M] int32 indices of the rows the op changed (the selection)
        self.fields = fields  # attributes the op replaced; the others are untouched by the whole chain
        self.op = op
        self.inverse = inverse  # {field: after rows} -> approximately {field: before rows}
        self.row_local = row_local  # op on just these rows gives the same values (so a chain can replay it)
        self._after = weakref.ref(after)  # the Gaussians this edit produced, while it is the frame's
        self.base = self if base is None else base
        if base is None:
            self.chain: list[RowPatch] = [self]
            self.values: dict[str, Tensor] | None = None  # the rows before the chain, stored whole
            self.residual: dict[str, tuple[Tensor, Tensor, Tensor]] | None = None  # or encoded
            self.anchor = -1  # chain index whose after-state the residual refers to (-1: values in the scene)
        self.index = self.base.chain.index(self) if base is None else len(base.chain)
        self.previous = None if base is None else base.chain[-1]

    @classmethod
    def record(cls, before: Gaussians, after: Gaussians, selected: Tensor, op: Op, inverse: Inverse | None = None,
               previous: RowPatch | None = None) -> RowPatch:
        """The patch for ``after = op(before, selected)``; chains onto ``previous`` when that replays exactly.

        Chaining needs: ``previous`` ends its chain and produced ``before`` (nothing else changed the
        frame since), the same rows and fields, and ``previous``'s op gives the same values on just
        those rows.
        """
        rows = selected.nonzero().squeeze(1).to(torch.int32)  # [M]
        fields = tuple(f for f in FIELDS if getattr(after, f) is not getattr(before, f))
        index = rows.long()
        replayed = op(_rows(before, index), torch.ones(len(index), dtype=torch.bool))
        row_local = all(torch.equal(getattr(replayed, f), getattr(after, f)[index]) for f in fields)
        before_rows = {f: getattr(before, f)[index] for f in fields}  # fancy indexing copies just these rows
        after_rows = {f: getattr(after, f)[index] for f in fields}
        if (previous is not None and previous.row_local and previous._after() is before
                and previous is previous.base.chain[-1] and previous.base.anchor == previous.index
                and previous.fields == fields and torch.equal(previous.rows, rows)):
            base = previous.base
            base_values = base._decode(before_rows)
            patch = cls(previous.rows, fields, op, inverse, base, after, row_local)
            base.chain.append(patch)
            base._encode(base_values, after_rows, patch.index)
            return patch
        patch = cls(rows, fields, op, inverse, None, after, row_local)
        patch._encode(before_rows, after_rows, 0)
        return patch

    # ------------------------------------------------------------ the base's values
    def _chain_inverse(self, rows_now: dict[str, Tensor], anchor: int) -> dict[str, Tensor] | None:
        approx = rows_now
        for patch in reversed(self.chain[: anchor + 1]):
            if patch.inverse is None:
                return None
            approx = patch.inverse(approx)
        return approx

    def _encode(self, values: dict[str, Tensor], rows_now: dict[str, Tensor], anchor: int) -> None:
        """Keep the base ``values`` as a residual against the chain's inverse from ``rows_now`` (state ``anchor``)."""
        approx = None if self.values is not None else self._chain_inverse(rows_now, anchor)
        if approx is None:  # some op of the chain has no inverse: keep the values whole
            self.values, self.residual, self.anchor = values, None, anchor
            return
        self.residual = {f: _residual(values[f], approx[f]) for f in values}
        self.anchor = anchor

    def _decode(self, rows_now: dict[str, Tensor]) -> dict[str, Tensor]:
        """The rows' values before the chain, given the rows as they are now (in state ``anchor``)."""
        if self.values is not None:
            return self.values
        if self.anchor < 0:
            return rows_now
        approx = self._chain_inverse(rows_now, self.anchor)
        return {f: _apply_residual(approx[f], *self.residual[f]) for f in self.residual}

    def _replay(self, values: dict[str, Tensor], current: Gaussians, upto: int) -> dict[str, Tensor]:
        """The rows after the chain's first ``upto`` ops, from the values before the chain."""
        for patch in self.chain[:upto]:
            sub = _rows(current, self.rows.long()).replace(**values)
            done = patch.op(sub, torch.ones(len(self.rows), dtype=torch.bool))
            values = {f: getattr(done, f) for f in self.fields}
        return values

    # ------------------------------------------------------------ undo / redo
    def undo(self, current: Gaussians) -> Gaussians:
        """``current`` (the state right after this edit) with the changed rows put back."""
        base, rows = self.base, self.rows.long()
        rows_now = {f: getattr(current, f)[rows] for f in self.fields}
        base_values = base._decode(rows_now)
        before = base._replay(base_values, current, self.index)
        if self.index == 0:
            if base.values is None:
                base.residual, base.anchor = None, -1  # the values are back in the scene itself
        else:
            base._encode(base_values, before, self.index - 1)
        values = {}
        for field in self.fields:
            tensor = getattr(current, field).clone()
            tensor[rows] = before[field]
            values[field] = tensor
        return current.replace(**values)

    def redo(self, current: Gaussians, selected: Tensor) -> Gaussians:
        base, rows = self.base, self.rows.long()
        rows_now = {f: getattr(current, f)[rows] for f in self.fields}
        base_values = rows_now if self.index == 0 and base.values is None else base._decode(rows_now)
        after = self.op(current, selected)
        self._after = weakref.ref(after)
        base._encode(base_values, {f: getattr(after, f)[rows] for f in self.fields}, self.index)
        return after

    def tensors(self) -> list[Tensor]:
        kept = [self.rows]
        if self.base is self:
            kept += list((self.values or {}).values())
            kept += [t for parts in (self.residual or {}).values() for t in parts]
        return kept


def _bits(values: Tensor) -> Tensor:
    return values.contiguous().view(torch.int32).to(torch.int64)


def _residual(exact: Tensor, approx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(codes int8, exception flat indices, exception values)``: ``exact`` as float steps from ``approx``."""
    delta = (_bits(exact) - _bits(approx.to(exact.dtype))).reshape(-1)
    small = delta.abs() <= 127
    codes = torch.where(small, delta, 0).to(torch.int8)
    far = (~small).nonzero().squeeze(1)
    return codes, far, exact.reshape(-1)[far].clone()


def _apply_residual(approx: Tensor, codes: Tensor, far: Tensor, values: Tensor) -> Tensor:
    approx = approx.to(values.dtype)
    bits = (_bits(approx).reshape(-1) + codes.to(torch.int64)).to(torch.int32)
    exact = bits.view(values.dtype)
    exact[far] = values
    return exact.reshape(approx.shape)


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
            return any(getattr(p, "base", p) is not p and id(p.base) in dropped for p in command.patches.values())

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

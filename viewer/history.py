"""Undo/redo of edits as per-frame snapshots.

Every edit replaces, for some frames, the frame's Gaussians reference and its
``deleted`` / ``selected`` masks. Gaussians are never mutated in place (edit
ops return new sets), so a snapshot is three references and undo or redo is a
reference swap: exact and O(frames touched), whatever the splat count.
"""

from __future__ import annotations

import dataclasses
import time

from torch import Tensor

from lyra.scene.gaussians import Gaussians

MAX_HISTORY = 200


@dataclasses.dataclass(frozen=True)
class FrameSnapshot:
    gaussians: Gaussians
    deleted: Tensor  # [N] bool, soft-deleted (hidden, dropped at export)
    selected: Tensor  # [N] bool


FrameKey = tuple[str, int]  # (layer name, frame index)


@dataclasses.dataclass
class EditCommand:
    """One undoable edit: the before and after state of each frame it touched."""

    label: str
    before: dict[FrameKey, FrameSnapshot]
    after: dict[FrameKey, FrameSnapshot]
    timestamp: float = dataclasses.field(default_factory=time.time)

    def touches_layer(self, layer: str) -> bool:
        return any(key[0] == layer for key in self.before)


class History:
    """Linear undo/redo stacks; a new command clears the redo stack."""

    def __init__(self, limit: int = MAX_HISTORY):
        self.limit = limit
        self.done: list[EditCommand] = []
        self.undone: list[EditCommand] = []

    def push(self, command: EditCommand) -> None:
        self.done.append(command)
        del self.done[: max(0, len(self.done) - self.limit)]
        self.undone.clear()

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
        """Drop commands that touch a removed layer (others stay undoable: snapshots are per frame)."""
        self.done = [c for c in self.done if not c.touches_layer(layer)]
        self.undone = [c for c in self.undone if not c.touches_layer(layer)]

    def labels(self) -> list[tuple[str, bool]]:
        """``(label, is_done)`` oldest first: done commands, then undone ones (redo order)."""
        return [(c.label, True) for c in self.done] + [(c.label, False) for c in reversed(self.undone)]

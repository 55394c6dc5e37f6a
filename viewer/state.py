"""The viewer's scene state, behind ONE lock.

viser runs plain ``def`` callbacks concurrently in a thread pool, and two
browser tabs may edit at once, so every read-modify-write of scene state goes
through :attr:`AppState.lock` (a re-entrant lock). The state knows nothing
about viser: it holds layers (a loaded static scene or 4D sequence), per-frame
soft-delete and selection masks, the undo history and the cache of packed
viser buffers. Panels call its methods; :mod:`viewer.scene_sync` sends what
changed.

Conventions: masks are ``torch.bool`` tensors ``[N]`` per frame. A deleted
splat is hidden and can never be selected; export drops it. For a sequence,
an edit applies to every frame (selection evaluated per frame) when
``scope == "all"``, or to the current frame only when ``scope == "current"``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from lyra.errors import EditError
from lyra.progress import Progress, subrange
from lyra.scene import Gaussians, GaussianSequence
from viewer.frame_buffers import DEFAULT_BUFFER_CACHE_BYTES, FrameBufferCache
from viewer.history import EditCommand, History, ReplacePatch, RowPatch
from viewer.layers import Frame, Layer, LayerInfo, SendStatus, TimeInfo, edited_lazy_frames
from viewer.sending import FrameSending
from viewer.splat_budget import DisplayPolicy

SCOPES = ("all", "current")
REPLACE = object()  # _commit's op for edits that replace whole frames (the history keeps before and after)
SELECTION_MODES = ("replace", "add", "subtract", "intersect")


class AppState(FrameSending):
    """Scene state of one viewer process (shared by every connected browser tab).

    Panels use its methods only (never ``layers``, ``lock`` or ``frame``): they take
    the lock themselves and hand out snapshots (:class:`LayerInfo`, :class:`TimeInfo`, counts).
    """

    def __init__(self, buffer_cache_bytes: int = DEFAULT_BUFFER_CACHE_BYTES) -> None:
        self.lock = threading.RLock()
        self.layers: dict[str, Layer] = {}
        self.active: str | None = None
        self.frame = 0
        self.scope = "all"
        self.history = History()
        self.view_position: tuple[float, float, float] | None = None  # SH bake viewpoint, None = DC colours
        self.version = 0  # bumped on every change, so the sync can tell something moved
        self.last_action: tuple[str, float] | None = None  # (label, seconds taken)
        self._revision = 0
        self._buffers = FrameBufferCache(buffer_cache_bytes)
        # the display policy (viewer.splat_budget): what the browser is sent, never what edits act on
        self._display = DisplayPolicy()
        self._prefetcher: ThreadPoolExecutor | None = None
        self._prefetching: dict[tuple, Future] = {}  # (layer, frame, send key) -> its queued prefetch
        self._cutting: dict[tuple, Future] = {}  # cuts being made, so that no two threads make the same one

    # ------------------------------------------------------------ layers
    def add_scene(self, scene: Gaussians | GaussianSequence, name: str, source: str = "") -> str:
        """Add a loaded scene as a new layer (made active); returns its unique name."""
        with self.lock:
            unique, k = name, 2
            while unique in self.layers:
                unique, k = f"{name} ({k})", k + 1
            zeros = lambda n: torch.zeros(n, dtype=torch.bool)  # noqa: E731
            if isinstance(scene, GaussianSequence) and scene.is_lazy:  # frames read on demand, not now
                frames = [Frame(None, zeros(n), zeros(n), lazy=scene.frames, index=i) for i, n in enumerate(scene.num_gaussians)]
                times, fps, is_seq = list(scene.times), scene.fps, True
            else:
                if isinstance(scene, GaussianSequence):
                    sets, times, fps, is_seq = list(scene.frames), list(scene.times), scene.fps, True
                else:
                    sets, times, fps, is_seq = [scene], [0.0], 24.0, False
                frames = [Frame(g, zeros(len(g)), zeros(len(g))) for g in sets]
            for f in frames:
                f.revision = self._next_revision()
            self.layers[unique] = Layer(unique, source, frames, is_seq, times, fps)
            self.active = unique
            self._changed()
            return unique

    def clear(self) -> None:
        """Remove every layer (opening a scene with "replace")."""
        with self.lock:
            for name in list(self.layers):
                self.remove_scene(name)

    def remove_scene(self, name: str) -> None:
        with self.lock:
            self.layer(name)
            del self.layers[name]
            self.history.forget_layer(name)
            self._buffers.drop_layer(name)
            if self.active == name:
                self.active = next(iter(self.layers), None)
            self.frame = min(self.frame, max(0, self.num_frames - 1))
            self._changed()

    def layer(self, name: str | None = None) -> Layer:
        """The named layer, or the active one; EditError if there is none."""
        with self.lock:
            name = self.active if name is None else name
            if name is None or name not in self.layers:
                raise EditError(f"no scene named {name!r} is loaded" if name else "no scene is loaded")
            return self.layers[name]

    def set_active(self, name: str) -> None:
        with self.lock:
            self.layer(name)
            self.active = name
            self._changed()

    def set_visible(self, name: str, visible: bool) -> None:
        with self.lock:
            self.layer(name).visible = bool(visible)
            self._changed()

    def layer_names(self) -> list[str]:
        with self.lock:
            return list(self.layers)

    def active_name(self) -> str | None:
        with self.lock:
            return self.active

    def hidden_layers(self) -> list[str]:
        with self.lock:
            return [name for name, layer in self.layers.items() if not layer.visible]

    def layer_info(self, name: str | None = None) -> LayerInfo:
        """A snapshot of a layer (default: the active one); EditError if there is none."""
        with self.lock:
            layer = self.layer(name)
            frame = layer.frames[layer.frame_index(self.frame)]
            lo, hi = frame.bounds()  # a lazy frame is not read for this (panels refresh on every frame)
            return LayerInfo(layer.name, layer.is_sequence, len(layer.frames), layer.fps, len(frame.deleted),
                             layer.sh_degree, (tuple(map(float, lo)), tuple(map(float, hi))), layer.visible)

    def has_sh(self) -> bool:
        with self.lock:
            return any(layer.sh_degree > 0 for layer in self.layers.values())

    def history_labels(self) -> list[tuple[str, bool]]:
        with self.lock:
            return self.history.labels()

    # -------------------------------------------------------------- time
    @property
    def num_frames(self) -> int:
        with self.lock:
            return max((len(layer.frames) for layer in self.layers.values()), default=1)

    def time_info(self) -> TimeInfo:
        with self.lock:
            seq = next((layer for layer in self.layers.values() if layer.is_sequence), None)
            seconds = seq.times[seq.frame_index(self.frame)] if seq is not None else None
            return TimeInfo(self.frame, self.num_frames, seq.fps if seq else None, seconds)

    def set_frame(self, index: int) -> int:
        """Show frame ``index`` (clamped); returns the frame shown."""
        with self.lock:
            index = int(np.clip(index, 0, self.num_frames - 1))
            if index != self.frame:
                self.frame = index
                self._display.settled = False  # a new frame shows at the playing budget first; idle settles it
                self._changed()
            return index

    def set_scope(self, scope: str) -> None:
        if scope not in SCOPES:
            raise EditError(f"edit scope must be one of {SCOPES}, got {scope!r}")
        with self.lock:
            self.scope = scope

    def current(self, name: str | None = None) -> Frame:
        """The frame of a layer (default: active) at the current frame index."""
        with self.lock:
            layer = self.layer(name)
            return layer.frames[layer.frame_index(self.frame)]

    def _frames_in_scope(self, layer: Layer) -> list[int]:
        return list(range(len(layer.frames))) if self.scope == "all" else [layer.frame_index(self.frame)]

    # ---------------------------------------------------------- selection
    def select(
        self,
        mask_fn: Callable[[int, Gaussians], Tensor],  # (frame index, frame) -> [N] bool
        mode: str = "replace",
    ) -> int:
        """Combine a new selection (evaluated per frame in scope) with the current one.

        ``mode``: replace | add | subtract | intersect. With scope "current" a
        replace also clears the other frames. Deleted splats are never selected.
        Returns the number of splats selected in the current frame.
        """
        from lyra.edit.select import combine

        if mode not in SELECTION_MODES:
            raise EditError(f"selection mode must be one of {SELECTION_MODES}, got {mode!r}")
        with self.lock:
            layer = self.layer()
            in_scope = self._frames_in_scope(layer)
            for i, frame in enumerate(layer.frames):
                if i in in_scope:
                    new = torch.as_tensor(mask_fn(i, frame.gaussians), dtype=torch.bool)
                    selected = combine(frame.selected, new, mode) & ~frame.deleted
                elif mode == "replace":
                    selected = torch.zeros_like(frame.selected)
                else:
                    continue
                self._set_frame(frame, selected=selected)
            self._changed()
            return int(self.current().selected.sum())

    def invert_selection(self) -> int:
        from lyra.edit.select import invert

        with self.lock:
            layer = self.layer()
            for i in self._frames_in_scope(layer):
                frame = layer.frames[i]
                self._set_frame(frame, selected=invert(frame.selected) & ~frame.deleted)
            self._changed()
            return int(self.current().selected.sum())

    def clear_selection(self) -> None:
        with self.lock:
            for frame in self.layer().frames:
                if bool(frame.selected.any()):
                    self._set_frame(frame, selected=torch.zeros_like(frame.selected))
            self._changed()

    def selected_count(self) -> int:
        with self.lock:
            return int(self.current().selected.sum()) if self.layers else 0

    # ------------------------------------------------------------- edits
    def delete_selected(self) -> int:
        """Soft-delete the selection in every frame in scope; returns splats deleted (all frames)."""
        return self._mask_edit("Delete selection", lambda f: (f.deleted | f.selected))

    def crop_to_selection(self) -> int:
        """Keep only the selection: soft-delete every other splat in the frames in scope."""
        return self._mask_edit("Keep only selection", lambda f: (f.deleted | ~f.selected))

    def delete_where(self, label: str, mask_fn: Callable[[int, Gaussians, Tensor], Tensor]) -> int:
        """Soft-delete splats flagged by ``mask_fn(frame index, frame, visible [N] bool) -> [N] bool``
        in every frame in scope, whatever the selection (e.g. floater removal)."""
        with self.lock:
            layer = self.layer()
            changes = {}
            total = 0
            for i in self._frames_in_scope(layer):
                frame = layer.frames[i]
                flagged = torch.as_tensor(mask_fn(i, frame.gaussians, ~frame.deleted), dtype=torch.bool) & ~frame.deleted
                if bool(flagged.any()):
                    changes[i] = (frame.deleted | flagged, frame.selected & ~flagged)
                    total += int(flagged.sum())
            self._commit(layer, f"{label} ({total} splats)", changes)
            return total

    def _mask_edit(self, label: str, new_deleted: Callable[[Frame], Tensor]) -> int:
        with self.lock:
            layer = self.layer()
            targets = [i for i in self._frames_in_scope(layer) if bool(layer.frames[i].selected.any())]
            if not targets:
                raise EditError("nothing is selected")
            changes, total = {}, 0
            for i in targets:
                frame = layer.frames[i]
                deleted = new_deleted(frame)
                total += int(deleted.sum()) - int(frame.deleted.sum())
                changes[i] = (deleted, torch.zeros_like(frame.selected))
            self._commit(layer, f"{label} ({total} splats)", changes)
            return total

    def apply_to_selection(self, label: str, op: Callable[[Gaussians, Tensor], Gaussians],
                           inverse: Callable[[dict], dict] | None = None) -> int:
        """Replace each frame in scope by ``op(frame, selected)`` (an op of :mod:`lyra.edit.ops`).

        Returns the number of frames changed; EditError when nothing is selected.
        """
        with self.lock:
            layer = self.layer()
            targets = [i for i in self._frames_in_scope(layer) if bool(layer.frames[i].selected.any())]
            if not targets:
                raise EditError("nothing is selected")
            changes = {}
            for i in targets:
                frame = layer.frames[i]
                new = op(frame.gaussians, frame.selected)
                if len(new) != len(frame.gaussians):
                    raise EditError(f"{label} changed the splat count; edits must keep it")
                changes[i] = (frame.deleted, frame.selected, new)
            self._commit(layer, label, changes, op, inverse)
            return len(targets)

    def replace_splats(self, label: str, fn: Callable[[Gaussians, Progress | None], Gaussians],
                       progress: Progress | None = None) -> list[int]:
        """Replace each frame in scope (soft deletes applied) by ``fn(frame, progress)``, which may change
        the count (e.g. simplify); selections are cleared. Runs ``fn`` outside the lock; one undoable
        command. Returns the new counts. EditError if the frames changed meanwhile."""
        with self.lock:
            layer = self.layer()
            inputs = {i: (layer.frames[i].revision, layer.frames[i].gaussians[~layer.frames[i].deleted])
                      for i in self._frames_in_scope(layer)}
        results = {}
        for k, (i, (_, g)) in enumerate(inputs.items()):
            results[i] = fn(g, subrange(progress, k / len(inputs), (k + 1) / len(inputs)))
        with self.lock:
            if self.layers.get(layer.name) is not layer or any(layer.frames[i].revision != rev for i, (rev, _) in inputs.items()):
                raise EditError(f"{label}: the scene changed while it ran; run it again")
            zeros = lambda n: torch.zeros(n, dtype=torch.bool)  # noqa: E731
            self._commit(layer, label, {i: (zeros(len(g)), zeros(len(g)), g) for i, g in results.items()}, REPLACE)
            return [len(g) for g in results.values()]

    def _commit(self, layer: Layer, label: str, changes: dict, op: Callable | None = None,
                inverse: Callable | None = None) -> None:
        """Apply per-frame changes ``{i: (deleted, selected[, gaussians])}`` as one undoable command.

        A new Gaussians must come from ``op(frame.gaussians, frame.selected)``: the history keeps
        only the selected rows' old values and the op (:class:`viewer.history.RowPatch`).
        """
        if not changes:
            raise EditError(f"{label}: nothing to change")
        start = time.perf_counter()
        before, after, patches = {}, {}, {}
        for i, change in changes.items():
            frame, key = layer.frames[i], (layer.name, i)
            before[key] = frame.snapshot()
            if len(change) > 2 and op is REPLACE:  # a count-changing edit (simplify): keep both sets
                patches[key] = ReplacePatch(frame.gaussians, change[2])
            elif len(change) > 2:
                patches[key] = RowPatch.record(frame.gaussians, change[2], frame.selected, op, inverse,
                                               self.history.last_patch(key))
            self._set_frame(frame, deleted=change[0], selected=change[1], gaussians=change[2] if len(change) > 2 else None)
            after[key] = frame.snapshot()
        self.history.push(EditCommand(label, before, after, patches), live=self._live_tensors())
        self._record(label, start)

    def _live_tensors(self) -> list[Tensor]:
        """Every tensor the loaded scenes hold now (history bytes shared with these cost nothing extra)."""
        live = []
        for layer in self.layers.values():
            for frame in layer.frames:
                live += [frame.deleted, frame.selected]
                if not frame.is_lazy:  # a lazy frame's splats live in its sequence's cache: never read them here
                    g = frame.gaussians
                    live += [g.means, g.quats, g.scales, g.opacities, g.sh]
        return live

    def history_bytes(self) -> int:
        """Bytes the undo history keeps alive beyond the scenes themselves."""
        with self.lock:
            return self.history.nbytes(self._live_tensors())

    def undo(self) -> str | None:
        """Undo the last edit; returns its label (None when there is nothing to undo)."""
        with self.lock:
            command = self.history.pop_undo()
            if command is not None:
                self._restore(command, undo=True)
            return None if command is None else command.label

    def redo(self) -> str | None:
        with self.lock:
            command = self.history.pop_redo()
            if command is not None:
                self._restore(command, undo=False)
            return None if command is None else command.label

    def _restore(self, command: EditCommand, undo: bool) -> None:
        """Put the frames of ``command`` back to before it (undo) or after it (redo); exact either way."""
        start = time.perf_counter()
        for (name, i), snap in (command.before if undo else command.after).items():
            if name not in self.layers:
                continue
            frame = self.layers[name].frames[i]
            patch = command.patches.get((name, i))
            gaussians = None
            if patch is not None:
                # redo runs the op on the state before the edit, with the selection it had then
                gaussians = patch.undo(frame.gaussians) if undo else patch.redo(frame.gaussians, command.before[(name, i)].selected)
            self._set_frame(frame, deleted=snap.deleted, selected=snap.selected, gaussians=gaussians)
        self._record(f"{'Undo' if undo else 'Redo'} {command.label}", start)

    # ------------------------------------------------------------ export
    def edited_scene(self, name: str | None = None) -> Gaussians | GaussianSequence:
        """The layer with soft deletes applied (what export writes)."""
        with self.lock:
            layer = self.layer(name)
            if layer.is_sequence and any(f.is_lazy for f in layer.frames):
                return GaussianSequence(edited_lazy_frames(layer), list(layer.times), layer.fps)  # streams on save
            kept = [f.gaussians[~f.deleted] if bool(f.deleted.any()) else f.gaussians for f in layer.frames]
            if layer.is_sequence:
                return GaussianSequence(kept, list(layer.times), layer.fps)
            return kept[0]

    def visible_current_frames(self) -> list[Gaussians]:
        """The current frame of every visible layer, soft deletes applied (what a server render draws)."""
        with self.lock:
            return self._visible_frames(self.frame)

    def _visible_frames(self, index: int) -> list[Gaussians]:
        frames = [layer.frames[layer.frame_index(index)] for layer in self.layers.values() if layer.visible]
        return [f.gaussians[~f.deleted] if bool(f.deleted.any()) else f.gaussians for f in frames]

    def visible_scene(self, animate: bool = False) -> Gaussians | GaussianSequence:
        """The visible layers as one scene, soft deletes applied; EditError when no splat is visible.

        ``animate`` and a visible 4D layer: a :class:`GaussianSequence` over the longest visible
        4D layer's frames and times (static layers appear in every frame). Otherwise the frame shown now.
        """
        with self.lock:
            if not sum(len(g) for g in self._visible_frames(self.frame)):
                raise EditError("nothing to show: no visible splats (tick Visible in the Scene tab)")
            clips = [layer for layer in self.layers.values() if layer.visible and layer.is_sequence]
            if not animate or not clips:
                return Gaussians.cat(self._visible_frames(self.frame))
            longest = max(clips, key=lambda layer: len(layer.frames))
            frames = [Gaussians.cat(self._visible_frames(i)) for i in range(len(longest.frames))]
            return GaussianSequence(frames, list(longest.times), longest.fps)

    # ----------------------------------------------------------- buffers
    def set_view_position(self, position: Iterable[float] | None) -> None:
        """Bake SH colours for a camera at ``position`` (None: DC colours only)."""
        with self.lock:
            self.view_position = None if position is None else tuple(float(v) for v in position)
            if any(layer.sh_degree > 0 for layer in self.layers.values()):
                self._changed()

    # ------------------------------------------------------ display policy
    def display_policy(self) -> DisplayPolicy:
        """A copy of the display policy (budgets, full detail, playing, settled)."""
        with self.lock:
            return dataclasses.replace(self._display)

    def splat_budget(self) -> int:
        """The cap on splats the browser receives now, over every visible layer."""
        with self.lock:
            return self._display.splat_budget()

    def set_splat_budget(self, paused: int, playing: int) -> None:
        """The splat budgets (counts): paused and idle, and while playing or just after a frame change."""
        with self.lock:
            self._display.paused, self._display.playing = max(1, int(paused)), max(1, int(playing))
            self._changed()

    def set_full_detail(self, enabled: bool, cap: int | None = None) -> None:
        """Full detail: paused and idle, send up to ``cap`` splats instead of the paused budget."""
        with self.lock:
            self._display.full_detail = bool(enabled)
            if cap is not None:
                self._display.full_detail_cap = max(1, int(cap))
            self._changed()

    def set_playing(self, playing: bool) -> bool:
        """Playback started or stopped; returns whether that changed anything (then the budget changed)."""
        with self.lock:
            if self._display.is_playing == bool(playing):
                return False
            self._display.is_playing = bool(playing)
            self._display.settled = False  # stopping shows the playing cut until idle, then the settled one
            self._changed()
            return True

    def settle(self, version: int) -> bool:
        """The view has been idle since state ``version``: switch to the settled budget (paused or full
        detail). Returns False, changing nothing, when the state moved on or playback runs."""
        with self.lock:
            if self.version != version or self._display.is_playing or self._display.settled:
                return False
            self._display.settled = True
            self._changed()
            return True

    def send_status(self) -> SendStatus:
        """Splats the browser gets now (per :meth:`send_plan`) against the live splats of the visible layers."""
        with self.lock:
            plan = [item for item in self.send_plan() if item.visible]
            sent, live = sum(item.share for item in plan), sum(item.live for item in plan)
            return SendStatus(sent, live, self._display.splat_budget(), self._display.reason())

    # ------------------------------------------------------------ status
    def counts(self) -> dict[str, int]:
        """Splats shown / total / selected in the current frame of every layer (shown: visible layers),
        and ``selected_all``: selected splats summed over every frame of every layer."""
        with self.lock:
            shown = total = selected = selected_all = 0
            for layer in self.layers.values():
                frame = layer.frames[layer.frame_index(self.frame)]
                total += len(frame.deleted)
                if layer.visible:
                    shown += len(frame.deleted) - int(frame.deleted.sum())
                selected += int(frame.selected.sum())
                selected_all += sum(int(f.selected.sum()) for f in layer.frames)
            return {"shown": shown, "total": total, "selected": selected, "selected_all": selected_all}

    # ----------------------------------------------------------- helpers
    def _next_revision(self) -> int:
        self._revision += 1
        return self._revision

    def _set_frame(self, frame: Frame, *, deleted=None, selected=None, gaussians=None) -> None:
        if deleted is not None:
            frame.deleted = deleted
        if selected is not None:
            frame.selected = selected
        if gaussians is not None:
            frame.gaussians = gaussians
        frame.revision = self._next_revision()

    def _changed(self) -> None:
        self.version += 1

    def _record(self, label: str, start: float) -> None:
        self.last_action = (label, time.perf_counter() - start)
        self._changed()

    def record_action(self, label: str, seconds: float) -> None:
        """What the status line's "last:" shows: any user action or job (edits record themselves)."""
        with self.lock:
            self.last_action = (label, float(seconds))


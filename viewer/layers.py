"""The viewer's scene records: a :class:`Layer` of :class:`Frame` s (held by :class:`viewer.state.AppState`,
behind its lock), and the snapshots panels get instead (:class:`LayerInfo`, :class:`TimeInfo`)."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from lyra.scene import Gaussians
from lyra.scene.lazy_frames import LazyFrames, RowReader
from viewer.frame_buffers import GaussiansRows
from viewer.history import FrameSnapshot


class Frame:
    """One frame of a layer: its splats, soft-delete and selection masks, and a revision.

    A frame of a lazily opened sequence (``lazy`` set) holds no splats until
    an edit gives it some: ``gaussians`` reads them from the sequence's
    :class:`lyra.scene.lazy_frames.LazyFrames`, whose byte-bounded cache keeps
    only a few frames in memory; the masks are sized from the header count.
    """

    def __init__(self, gaussians: Gaussians | None, deleted: Tensor, selected: Tensor, revision: int = 0, *,
                 lazy: LazyFrames | None = None, index: int = 0):
        self._gaussians = gaussians
        self.deleted = deleted  # [N] bool
        self.selected = selected  # [N] bool
        self.revision = revision  # bumped on every change; keys the display-buffer cache
        self.lazy, self.index = lazy, index
        self._rows: GaussiansRows | None = None

    @property
    def gaussians(self) -> Gaussians:
        return self._gaussians if self._gaussians is not None else self.lazy[self.index]

    @gaussians.setter
    def gaussians(self, value: Gaussians) -> None:
        self._gaussians = value

    def rows(self) -> RowReader:
        """The frame's splats as a row reader (same object while the splats stay the same): a lazy frame's
        file rows when its format has a reader (nothing read yet), else the splats in memory."""
        if self.is_lazy:
            reader = self.lazy.row_reader(self.index)
            if reader is not None:
                return reader
        if self.is_lazy:  # held by nobody here: the sequence's byte budget alone decides what stays read
            return GaussiansRows(self.gaussians)
        if self._rows is None or self._rows.gaussians is not self._gaussians:
            self._rows = GaussiansRows(self._gaussians)
        return self._rows

    def bounds(self) -> tuple:
        """Axis-aligned box of the centres ``(min [3], max [3])``; a lazy frame's from its file's
        columns when it has a row reader (kept there), so showing a frame's info never reads it whole."""
        reader = self.lazy.row_reader(self.index) if self.is_lazy else None
        return reader.bounds() if reader is not None else self.gaussians.bounds()

    @property
    def is_lazy(self) -> bool:
        """True while the splats come from the lazy sequence (not edited yet)."""
        return self._gaussians is None

    @property
    def sh_degree(self) -> int:
        return self.lazy.sh_degrees[self.index] if self.is_lazy else self._gaussians.sh_degree

    def snapshot(self) -> FrameSnapshot:
        return FrameSnapshot(self.deleted, self.selected)


@dataclasses.dataclass
class Layer:
    """One loaded scene: a static set (one frame) or a 4D sequence."""

    name: str
    source: str
    frames: list[Frame]
    is_sequence: bool
    times: list[float]
    fps: float
    visible: bool = True

    @property
    def sh_degree(self) -> int:
        return max(f.sh_degree for f in self.frames)  # from headers for lazy frames

    def frame_index(self, global_frame: int) -> int:
        """The frame shown at the viewer's frame index (a static layer always shows frame 0)."""
        return min(global_frame, len(self.frames) - 1)


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """What a panel shows about one layer (a snapshot; panels never hold a Layer)."""

    name: str
    is_sequence: bool
    num_frames: int
    fps: float
    splats: int  # in the frame shown now
    sh_degree: int
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]]  # (lo, hi) of the frame shown now
    visible: bool


@dataclasses.dataclass(frozen=True)
class TimeInfo:
    """The viewer's time: frame shown (0-based), frame count, and the first 4D layer's fps and time."""

    frame: int
    num_frames: int
    fps: float | None
    seconds: float | None


@dataclasses.dataclass(frozen=True)
class SendItem:
    """What one layer sends for one viewer frame (:meth:`viewer.state.AppState.send_plan`)."""

    layer: str
    frame: int  # the layer's frame index
    share: int  # splats it may send: its part of the splat budget (0 when hidden)
    live: int  # splats not deleted in that frame
    visible: bool
    key: tuple  # (revision, bake viewpoint, share): the sent buffer changes exactly when this does


@dataclasses.dataclass(frozen=True)
class SendStatus:
    """Splats the browser gets now, over the visible layers (for the status line)."""

    sent: int
    live: int
    budget: int  # the cap in force
    reason: str  # which setting the cap comes from ("playing budget", "full detail cap", ...)


def edited_lazy_frames(layer: Layer) -> LazyFrames:
    """The layer's frames with soft deletes applied, read one at a time (an export never holds the clip)."""
    def loader(frame: Frame, deleted: Tensor, stored: Gaussians | None):
        def load() -> Gaussians:
            g = stored if stored is not None else frame.lazy[frame.index]
            return g[~deleted] if bool(deleted.any()) else g
        return load

    frames = layer.frames
    loaders = [loader(f, f.deleted, None if f.is_lazy else f.gaussians) for f in frames]
    counts = [len(f.deleted) - int(f.deleted.sum()) for f in frames]
    return LazyFrames(loaders, counts, [f.sh_degree for f in frames], budget_bytes=1)

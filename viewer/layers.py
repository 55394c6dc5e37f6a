"""The viewer's scene records: a :class:`Layer` of :class:`Frame` s (held by :class:`viewer.state.AppState`,
behind its lock), and the snapshots panels get instead (:class:`LayerInfo`, :class:`TimeInfo`)."""

from __future__ import annotations

import dataclasses

from torch import Tensor

from lyra.scene import Gaussians
from viewer.history import FrameSnapshot


@dataclasses.dataclass
class Frame:
    gaussians: Gaussians
    deleted: Tensor  # [N] bool
    selected: Tensor  # [N] bool
    revision: int = 0  # bumped on every change; keys the display-buffer cache

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
        return max(f.gaussians.sh_degree for f in self.frames)

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

"""Dynamic (4D) scenes as an ordered list of per-time Gaussian sets.

Lyra's dynamic decoder is queried once per target time and returns a full
Gaussian set each time ("bullet time"), so frames are independent
:class:`Gaussians` whose counts may differ; there is no correspondence between
splats of different frames.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterator, Sequence

from lyra.errors import InvalidGaussiansError
from lyra.scene.gaussians import Gaussians
from lyra.scene.lazy_frames import LazyFrames

DEFAULT_FPS = 24.0


@dataclasses.dataclass(eq=False)
class GaussianSequence:
    """Frames in time order with their times in seconds.

    ``times`` defaults to ``i / fps``; when given it must be strictly increasing
    and as long as ``frames``. ``frames`` is a list, or a :class:`LazyFrames`
    (what loading a sequence folder or zip gives: frames read on demand, counts
    from the headers); iterating a lazy sequence reads one frame at a time.
    """

    frames: list[Gaussians] | LazyFrames
    times: list[float] | None = None
    fps: float = DEFAULT_FPS

    def __post_init__(self) -> None:
        if not isinstance(self.frames, LazyFrames):
            self.frames = list(self.frames)
        if not self.frames:
            raise InvalidGaussiansError("a GaussianSequence needs at least one frame")
        if not self.fps > 0:
            raise InvalidGaussiansError(f"fps must be positive, got {self.fps}")
        if self.times is None:
            self.times = [i / self.fps for i in range(len(self.frames))]
        self.times = [float(t) for t in self.times]
        if len(self.times) != len(self.frames):
            raise InvalidGaussiansError(f"{len(self.times)} times for {len(self.frames)} frames")
        if any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise InvalidGaussiansError("frame times must be strictly increasing")

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> Gaussians:
        return self.frames[index]

    def __iter__(self) -> Iterator[Gaussians]:
        return iter(self.frames)

    @property
    def is_lazy(self) -> bool:
        return isinstance(self.frames, LazyFrames)

    @property
    def num_gaussians(self) -> list[int]:
        """Splats per frame (for a lazy sequence: as the headers say, without reading frames)."""
        return list(self.frames.counts) if self.is_lazy else [len(f) for f in self.frames]

    @property
    def sh_degree(self) -> int:
        return max(self.frames.sh_degrees) if self.is_lazy else max(f.sh_degree for f in self.frames)

    @property
    def origin(self) -> str | None:
        """The frames' common provenance (``Gaussians.origin``), None when they differ or are unknown."""
        first = self.frames[0].origin
        return first if all(f.origin == first for f in self.frames) else None

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return self.times[-1] - self.times[0]

    def index_at_time(self, t: float) -> int:
        """Index of the frame whose time is nearest ``t`` (ties go to the earlier frame)."""
        i = bisect.bisect_left(self.times, t)
        if i == 0:
            return 0
        if i == len(self.times):
            return len(self.times) - 1
        return i - 1 if t - self.times[i - 1] <= self.times[i] - t else i

    def frame_at_time(self, t: float) -> Gaussians:
        return self.frames[self.index_at_time(t)]

    def map(self, fn) -> GaussianSequence:
        """Apply ``fn: Gaussians -> Gaussians`` to every frame, keeping times and fps."""
        return GaussianSequence([fn(f) for f in self.frames], list(self.times), self.fps)

    @classmethod
    def from_frames(cls, frames: Sequence[Gaussians], fps: float = DEFAULT_FPS) -> GaussianSequence:
        return cls(list(frames), None, fps)

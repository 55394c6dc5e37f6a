"""Frames of a 4D sequence read on demand, kept in a least-recently-used cache bounded by bytes.

A :class:`LazyFrames` is what ``lyra.scene.load(folder or zip)`` puts in
``GaussianSequence.frames``: ``len()``, per-frame splat counts and SH degrees
come from the files' headers when the sequence is opened; a frame's splats
are read the first time it is indexed (by the same reader that ``load`` uses
on that file, so the values are identical) and kept until the cache's byte
budget forces the least recently used frames out. ``prefetch`` reads frames
on one background thread (what playback asks for ahead of time).

A frame may also have a *row reader* (``row_readers[i]()``, e.g.
:class:`lyra.scene.formats.ply.PlyRows`): ``log_importance()`` and ``read(rows)``
without reading the whole frame, which is how a viewer shows a budget's most
important splats of a big frame. Rows read that way are not cached here.

Thread-safe: the viewer's callbacks and its prefetch thread share one cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

import numpy as np

from lyra.errors import InvalidGaussiansError
from lyra.scene.gaussians import Gaussians

DEFAULT_CACHE_BYTES = 1 << 30  # ~4 frames of 1M splats at SH degree 3 (236 MiB each)


class RowReader(Protocol):
    """Random access to one frame's splats (see the module docstring)."""

    def __len__(self) -> int: ...

    def log_importance(self) -> np.ndarray: ...  # [N] float32, lyra.scene.importance.log_importance

    def read(self, rows: np.ndarray) -> Gaussians: ...  # rows: int [M] increasing -> those splats

    def bounds(self) -> tuple[np.ndarray, np.ndarray]: ...  # (min [3], max [3]) of the centres


def gaussians_nbytes(g: Gaussians) -> int:
    tensors = [g.means, g.quats, g.scales, g.opacities, g.sh, *g.extras.values()]
    return sum(t.numel() * t.element_size() for t in tensors)


class LazyFrames(Sequence):
    """A read-only sequence of Gaussians loaded by ``loaders[i]()`` on first access (module docstring).

    ``counts[i]`` / ``sh_degrees[i]``: what frame ``i``'s header says. ``keep_alive``
    holds whatever the loaders need to stay valid (e.g. the temp folder of an
    extracted zip). ``budget_bytes`` may be changed at any time; the most
    recently used frame always stays cached.
    """

    def __init__(self, loaders: list[Callable[[], Gaussians]], counts: list[int], sh_degrees: list[int],
                 budget_bytes: int = DEFAULT_CACHE_BYTES, keep_alive: object = None,
                 row_readers: list[Callable[[], RowReader | None]] | None = None):
        if not (len(loaders) == len(counts) == len(sh_degrees)) or (row_readers is not None and len(row_readers) != len(loaders)):
            raise InvalidGaussiansError("LazyFrames needs one loader, count and SH degree (and row reader) per frame")
        self._loaders = list(loaders)
        self._row_factories = list(row_readers) if row_readers is not None else None
        self._row_readers: dict[int, RowReader | None] = {}
        self.counts = list(counts)
        self.sh_degrees = list(sh_degrees)
        self.budget_bytes = budget_bytes
        self.keep_alive = keep_alive
        self.reads = 0  # frames read from disk so far (tests and benchmarks look at it)
        self._cache: OrderedDict[int, Gaussians] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[int, Future] = {}
        self._executor: ThreadPoolExecutor | None = None

    def __len__(self) -> int:
        return len(self._loaders)

    def __iter__(self) -> Iterator[Gaussians]:  # streams: each frame is read when reached
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # IndexError and negative indices as a list does
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            pending = self._loading.get(index)
        if pending is not None:
            return pending.result()
        return self._load(index)

    def row_reader(self, index: int) -> RowReader | None:
        """Frame ``index``'s row reader (made once, then kept), or None when its format has none."""
        index = range(len(self))[index]
        if self._row_factories is None:
            return None
        with self._lock:
            if index in self._row_readers:
                return self._row_readers[index]
        reader = self._row_factories[index]()
        with self._lock:
            return self._row_readers.setdefault(index, reader)

    def cached(self) -> list[int]:
        """Indices of the frames in memory, least recently used first."""
        with self._lock:
            return list(self._cache)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(gaussians_nbytes(g) for g in self._cache.values())

    def prefetch(self, indices: Sequence[int]) -> list[Future]:
        """Read ``indices`` (not yet cached) on a background thread; returns their futures."""
        futures = []
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lyra-prefetch")
            for index in indices:
                index = range(len(self))[index]
                if index in self._cache:
                    continue
                if index not in self._loading:
                    self._loading[index] = self._executor.submit(self._load, index)
                futures.append(self._loading[index])
        return futures

    def _load(self, index: int) -> Gaussians:
        try:
            frame = self._loaders[index]()
        finally:
            with self._lock:
                self._loading.pop(index, None)
        with self._lock:
            self.reads += 1
            self._cache[index] = frame
            self._cache.move_to_end(index)
            total = sum(gaussians_nbytes(g) for g in self._cache.values())
            while total > self.budget_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                total -= gaussians_nbytes(old)
        return frame

    def close(self) -> None:
        """Stop the prefetch thread and drop the cache (the frames stay readable)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._cache.clear()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

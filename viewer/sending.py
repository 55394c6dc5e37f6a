"""What the browser is sent: :class:`FrameSending`, the half of :class:`viewer.state.AppState` that turns
its frames into viser buffers under the display policy (the policy itself lives in the state).

One route: :meth:`FrameSending.send_plan` computes the splat budget once per frame and splits it over
the visible layers; :meth:`FrameSending.send_buffer` makes (or finds) each layer's buffer, and the
playback prefetch, the "Preparing frames" job and :class:`viewer.scene_sync.SceneSync` all go through it,
so a frame prepared by any of them is the same, byte for byte, and is made once.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from lyra.progress import Progress, report
from viewer.frame_buffers import cut_buffer
from viewer.layers import SendItem
from viewer.splat_budget import split_budget


class FrameSending:
    """Mixed into :class:`viewer.state.AppState`; uses its ``lock``, ``layers``, ``frame``, ``view_position``,
    ``_display`` (the policy), ``_buffers`` (the byte-bounded cache), ``_cutting``, ``_prefetcher`` and
    ``_prefetching``."""

    def display_buffer(self, name: str, frame_index: int | None = None) -> np.ndarray:
        """viser buffer ``uint32 [M, 8]`` of every live splat of a layer's frame (default: the current one):
        deleted splats dropped, selection tinted, SH baked for :attr:`view_position` when the frame has SH.
        Cached. What the browser gets is :meth:`send_buffer` (cut to the splat budget)."""
        with self.lock:
            layer = self.layer(name)
            i = layer.frame_index(self.frame) if frame_index is None else frame_index
            frame = layer.frames[i]
            bake = self.view_position if frame.sh_degree > 0 else None
            return self._buffers.display((name, i), frame.gaussians, frame.deleted, frame.selected, frame.revision, bake)

    def send_plan(self, frame_index: int | None = None) -> list[SendItem]:
        """What the browser gets for the viewer's frame ``frame_index`` (default: the current one), one item
        per layer: the splat budget is computed ONCE here and split over the visible layers (a hidden layer
        gets 0). For a frame other than the current one: what it will get when it is switched to.
        :class:`viewer.scene_sync.SceneSync` sends exactly this; the status line reports it."""
        with self.lock:
            index = self.frame if frame_index is None else frame_index
            # another frame, once shown, starts unsettled (the playing budget): plan it as it will be sent
            policy = self._display if index == self.frame else dataclasses.replace(self._display, settled=False)
            budget = policy.splat_budget()
            items = []
            for name, layer in self.layers.items():
                i = layer.frame_index(index)
                frame = layer.frames[i]
                live = len(frame.deleted) - int(frame.deleted.sum())
                bake = self.view_position if frame.sh_degree > 0 else None
                items.append(SendItem(name, i, live if layer.visible else 0, live, layer.visible,
                                      (frame.revision, bake, 0)))
            shares = split_budget(budget, [item.share for item in items])
            return [dataclasses.replace(item, share=share, key=item.key[:2] + (share,))
                    for item, share in zip(items, shares, strict=True)]

    def send_buffer(self, item: SendItem) -> np.ndarray:
        """The buffer of a :meth:`send_plan` item: at most ``item.share`` splats, the most important live ones.

        In-memory frames that fit come from :meth:`display_buffer`; every other frame is cut (only the
        chosen rows read and packed) outside the lock, once: the playback prefetch, the preparing job and
        this on-demand call share one route, :meth:`_cut`, and wait for each other's work.
        """
        if item.share == 0:  # a hidden layer: nothing to rank, read or pack
            return np.zeros((0, 8), np.uint32)
        with self.lock:
            layer = self.layers[item.layer]
            frame = layer.frames[item.frame]
            if item.share >= item.live and not frame.is_lazy:
                return self.display_buffer(item.layer, item.frame)
        return self._cut(item.layer, item.frame, item.share)

    def prefetch(self, ahead: int = 2) -> list[Future]:
        """Prepare what the next ``ahead`` frames will send (playback), on one background thread: their
        cuts at the splat budget of now, so a frame switch is a cache hit and one send. Returns the futures."""
        with self.lock:
            index, count = self.frame, self.num_frames
            jobs = []
            for k in dict.fromkeys(j % count for j in range(index + 1, index + 1 + ahead)):
                if k == index:
                    continue
                for item in self.send_plan(k):
                    if self.layers[item.layer].frames[item.frame].is_lazy or item.share < item.live:
                        jobs.append(item)
            if not jobs:
                return []
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viewer-prefetch")
            # a tick asks again for frames still queued: reuse those futures, so a slow first loop never
            # piles up a queue of repeats
            self._prefetching = {key: f for key, f in self._prefetching.items() if not f.done()}
            futures = []
            for item in jobs:
                key = (item.layer, item.frame, item.key)
                if key not in self._prefetching:
                    self._prefetching[key] = self._prefetcher.submit(self.send_buffer, item)
                futures.append(self._prefetching[key])
            return futures

    def _cut(self, name: str, index: int, share: int) -> np.ndarray:
        """Frame ``index`` of layer ``name`` cut to ``share`` splats: cached, or made here (outside the lock)
        and cached, or waited for when another thread is making it. The one way a cut is prepared."""
        with self.lock:
            frame = self.layer(name).frames[index]
            rows = frame.rows()
            bake = self.view_position if frame.sh_degree > 0 else None
            cut_key = (frame.revision, bake, share)
            cached = self._buffers.cut((name, index), rows, cut_key)
            if cached is not None:
                return cached
            pending = self._cutting.get((name, index, cut_key))
            if pending is None:
                pending = self._cutting[(name, index, cut_key)] = Future()
                owner, scores = True, self._buffers.scores((name, index), rows)
                deleted, selected = frame.deleted, frame.selected
            else:
                owner = False
        if not owner:
            return pending.result()
        try:
            live = len(deleted) - int(deleted.sum())
            if scores is None and share < live:
                scores = rows.log_importance()
            cut = cut_buffer(rows, scores if share < live else None, deleted, selected, bake, share)
            with self.lock:
                if frame.revision == cut_key[0] and self.layers.get(name) is not None:
                    self._buffers.store_cut((name, index), rows, scores, cut_key, cut)
            pending.set_result(cut)
            return cut
        except BaseException as exc:
            pending.set_exception(exc)
            raise
        finally:
            with self.lock:
                self._cutting.pop((name, index, cut_key), None)

    @property
    def buffer_cache_bytes(self) -> int:
        """The buffer cache's byte budget (not the splat budget, a count)."""
        return self._buffers.budget_bytes

    def cached_buffer_bytes(self) -> int:
        with self.lock:
            return self._buffers.nbytes

    def prepare_frames(self, name: str, progress: Progress | None = None) -> int:
        """Prepare what every frame of layer ``name`` sends when switched to (:meth:`send_plan`)
        while the buffer cache has room, so a clip plays from the cache; returns the frames prepared.
        The same route as a send (:meth:`send_buffer`)."""
        with self.lock:
            if name not in self.layers:
                return 0
            count = len(self.layers[name].frames)
        for i in range(count):
            with self.lock:
                if name not in self.layers or self.cached_buffer_bytes() > 0.8 * self.buffer_cache_bytes:
                    return i
                item = next(item for item in self.send_plan(i) if item.layer == name)
            self.send_buffer(item)
            report(progress, (i + 1) / count, f"{name}: frame {i + 1}/{count}")
        return count

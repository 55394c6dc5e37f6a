"""SH colour bakes driven by client cameras: one pending bake per client, coalesced, on one worker thread.

viser's client draws one RGB per splat, so scenes with SH degree > 0 get
their colours baked on the server for a viewpoint
(:meth:`viewer.state.AppState.set_view_position`). Every client's camera
moves all the time; baking per camera message (or a timer thread per message)
makes the work, the threads and the memory grow with the number of clients.
So :class:`ViewBaker` keeps at most ONE pending position per client (a newer
camera replaces it and restarts its settle time), and a single worker thread
bakes only the newest settled position: the bake is shared by every client,
so older settled positions would be overwritten at once anyway.
:meth:`ViewBaker.forget` drops a client's pending bake when it disconnects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SETTLE_SECONDS = 0.35


class ViewBaker:
    """Coalesces camera positions into bakes; ``bake(position)`` runs on the worker thread only."""

    def __init__(self, bake: Callable[[tuple[float, float, float]], None], settle_s: float = SETTLE_SECONDS):
        self._bake = bake
        self.settle_s = float(settle_s)
        self._pending: dict[int, tuple[float, tuple[float, float, float]]] = {}  # client id -> (due time, position)
        self._wake = threading.Condition()
        self._stopped = False
        self.bakes_done = 0  # bakes run so far (for the status log and tests)
        self._worker = threading.Thread(target=self._run, name="viewer-sh-bake", daemon=True)
        self._worker.start()

    def camera_moved(self, client_id: int, position) -> None:
        """``client_id``'s camera is at ``position`` now: (re)schedule its one pending bake."""
        point = tuple(float(v) for v in position)
        with self._wake:
            self._pending[client_id] = (time.monotonic() + self.settle_s, point)
            self._wake.notify()

    def forget(self, client_id: int) -> None:
        """Drop ``client_id``'s pending bake (it disconnected)."""
        with self._wake:
            self._pending.pop(client_id, None)

    def pending_clients(self) -> list[int]:
        with self._wake:
            return list(self._pending)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._pending.clear()
            self._wake.notify()

    def _next_position(self) -> tuple[float, float, float] | None:
        """Wait for the next settled position (None: stopped); drops every other settled one."""
        with self._wake:
            while not self._stopped:
                now = time.monotonic()
                due = {cid: item for cid, item in self._pending.items() if item[0] <= now}
                if due:
                    for cid in due:
                        del self._pending[cid]
                    return max(due.values())[1]  # the latest to settle is the newest camera
                soonest = min((item[0] for item in self._pending.values()), default=None)
                self._wake.wait(None if soonest is None else max(0.0, soonest - now))
            return None

    def _run(self) -> None:
        while (position := self._next_position()) is not None:
            try:
                self._bake(position)
            except Exception as exc:  # a failed bake must not end the worker: the next camera tries again
                print(f"[lyra-studio] SH bake failed: {type(exc).__name__}: {exc}", flush=True)
            self.bakes_done += 1

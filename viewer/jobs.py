"""Background jobs: long work (video export, floater removal, renders) off viser's callback threads.

A job runs ``fn(job)`` in a daemon thread. The job IS a :data:`lyra.progress.Progress`:
``fn`` hands it to library calls as ``progress=job`` (or calls ``job(fraction, text)``
itself). Cancelling sets a flag; the next ``job(...)`` call raises
:class:`lyra.progress.Cancelled`, which travels up through the library and ends
the job as "cancelled". Listeners get every change, so the jobs panel can mirror
each job in its own row.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from lyra.errors import LyraError
from lyra.progress import Cancelled

STATUSES = ("pending", "running", "done", "failed", "cancelled")


class Job:
    """One background job; call it as a progress callback ``job(fraction, text)``."""

    def __init__(self, name: str, fn: Callable[[Job], object], on_change: Callable[[Job], None] | None = None):
        self.name = name
        self.fraction = 0.0
        self.text = ""
        self.status = "pending"  # one of STATUSES
        self.error: str | None = None
        self.result: object = None
        self._fn = fn
        self._on_change = on_change
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{name}", daemon=True)

    def __call__(self, fraction: float, text: str = "") -> None:
        """Report progress (``fraction`` in 0..1); raises Cancelled once the job was cancelled."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.name} was cancelled")
        self.fraction, self.text = float(min(max(fraction, 0.0), 1.0)), text
        self._notify()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def running(self) -> bool:
        return self.status in ("pending", "running")

    def cancel(self) -> None:
        self._cancel.set()

    def start(self) -> Job:
        self.status = "running"
        self._notify()
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.result = self._fn(self)
            self.status, self.fraction = "done", 1.0
        except Cancelled:
            self.status = "cancelled"
        except Exception as exc:  # shown to the user; a bug's traceback also goes to the server log
            self.status, self.error = "failed", str(exc) or type(exc).__name__
            if not isinstance(exc, LyraError):
                self.error = f"internal error: {type(exc).__name__}: {self.error}"
                traceback.print_exc()
        self._notify()

    def _notify(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self)
            except Exception:
                traceback.print_exc()

"""Background jobs: long work (video export, floater removal, renders) off viser's callback threads.

A job runs ``fn(job)`` in a daemon thread. The function reports progress with
``job.progress(fraction, text)`` and checks ``job.cancelled`` (or calls
``job.check_cancelled()``, which raises :class:`JobCancelled`). Listeners get
every change, so a panel can mirror it in a progress bar and notifications.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable

from lyra.errors import LyraError


class JobCancelled(Exception):
    """Raised inside a job's function when the user cancelled it."""


class Job:
    def __init__(self, name: str, fn: Callable[[Job], object], on_change: Callable[[Job], None] | None = None):
        self.name = name
        self.fraction = 0.0
        self.text = ""
        self.status = "pending"  # pending | running | done | failed | cancelled
        self.error: str | None = None
        self.result: object = None
        self._fn = fn
        self._on_change = on_change
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"job-{name}", daemon=True)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled(self.name)

    def progress(self, fraction: float, text: str = "") -> None:
        self.fraction, self.text = float(min(max(fraction, 0.0), 1.0)), text
        self._notify()

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
        except JobCancelled:
            self.status = "cancelled"
        except Exception as exc:  # shown to the user; the traceback goes to the server log
            self.status, self.error = "failed", str(exc) or type(exc).__name__
            if not isinstance(exc, LyraError):  # a user error is shown in the UI; a bug also goes to the log
                traceback.print_exc()
        self._notify()

    def _notify(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self)
            except Exception:
                traceback.print_exc()

"""Open-by-path for browser clients: confined to the server's folders, run as a job with a deadline.

Any client can type a server path, so:

* :class:`PathConfinement`: only paths inside the roots the server was told
  about (the scenes on the command line, ``--data-dir`` folders) open, unless
  the server runs with ``--open-anywhere``. The check is on the resolved path
  (symlinks followed) and comes *before* anything touches the path; the refusal
  reads the same whether or not the path exists.
* :func:`load_with_deadline`: the load runs in its own daemon thread and the
  job waits for it at most ``timeout_s`` (a stalled network mount must not
  hold a job, or shutdown, forever). A load that finishes after its deadline is
  dropped. Cancelling the job stops the wait the same way.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from lyra.errors import SceneFileError

DEFAULT_OPEN_TIMEOUT_S = 300.0
_POLL_S = 0.1


class PathConfinement:
    """The folders (and single files) whose contents clients may open by path."""

    def __init__(self, roots: Iterable[str | os.PathLike] = (), anywhere: bool = False):
        self.anywhere = anywhere
        self.roots: list[Path] = []
        for root in roots:
            self.add(root)

    def add(self, root: str | os.PathLike) -> None:
        resolved = Path(root).expanduser().resolve()
        if resolved not in self.roots:
            self.roots.append(resolved)

    def check(self, raw: str) -> Path:
        """The resolved path for ``raw`` if clients may open it; SceneFileError otherwise (same text either way)."""
        raw = raw.strip()
        if not raw or "\0" in raw:
            raise SceneFileError(None, "a server path", "an empty or invalid path")
        target = Path(raw).expanduser()
        if self.anywhere:
            return target
        resolved = target.resolve()  # symlinks inside a root that point out of it are outside
        if any(resolved == root or root in resolved.parents for root in self.roots):
            return resolved
        # Same words whether or not the path exists: a client learns nothing about the rest of the disk.
        raise SceneFileError(raw, "a path inside the folders this viewer serves (its command-line scenes and "
                             "--data-dir folders; start it with --open-anywhere to lift this)", "a path outside them")


def load_with_deadline(load: Callable[[], object], timeout_s: float, path: Path,
                       cancelled: Callable[[], bool] = lambda: False,
                       progress: Callable[[float], None] = lambda fraction: None) -> tuple[object, list]:
    """``(result of load(), warnings it issued)``, or SceneFileError after ``timeout_s``; Cancelled passes through.

    ``load`` runs in a daemon thread, so a read stuck in the kernel costs one
    parked thread, never a callback thread, a job slot or the shutdown.
    """
    outcome: dict = {}
    done = threading.Event()

    def run() -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                outcome["value"] = load()
            outcome["warnings"] = list(caught)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting job
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"open-{path.name}", daemon=True).start()
    start = time.monotonic()
    while not done.wait(_POLL_S):
        elapsed = time.monotonic() - start
        if cancelled():
            from lyra.progress import Cancelled

            raise Cancelled(f"opening {path.name} was cancelled")
        if elapsed > timeout_s:
            raise SceneFileError(path, f"a load that finishes within {timeout_s:g} s",
                                 "no result in time (gave up waiting; is it on a stalled drive?)")
        progress(min(0.95, elapsed / timeout_s))
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"], outcome["warnings"]

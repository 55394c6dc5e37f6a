"""Open-by-path for browser clients: confined to the server's folders, run as a job with a deadline.

Any client can type a server path, so:

* :class:`PathConfinement`: only paths inside the roots the server was told
  about (the scenes on the command line, ``--data-dir`` folders) open, unless
  the server runs with ``--open-anywhere``. The check is on the resolved path
  (symlinks followed) and comes *before* anything touches the path; the refusal
  reads the same whether or not the path exists. :meth:`PathConfinement.reads`
  then confines the load itself (:func:`lyra.fileio.confined_reads`): every
  file it opens is checked on its open descriptor, so a folder swapped for a
  symlink after the check still cannot bring in an outside file.
* :func:`read_camera_path`: the Render panel's keyframed path JSON, confined
  the same way, a FIFO refused before opening, and no file content in errors.
* :func:`load_with_deadline`: the load runs in its own daemon thread and the
  job waits for it at most ``timeout_s`` (a stalled network mount must not
  hold a job, or shutdown, forever). A load that finishes after its deadline is
  dropped. Cancelling the job stops the wait the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from lyra.errors import CameraPathError, LyraError, SceneFileError
from lyra.fileio import confined_reads, open_regular

DEFAULT_OPEN_TIMEOUT_S = 300.0
MAX_CAMERA_PATH_BYTES = 16 << 20
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
        try:
            resolved = target.resolve()  # symlinks inside a root that point out of it are outside
        except (OSError, RuntimeError):  # a loop, or a link swapped for a folder while being resolved
            resolved = None
        if resolved is not None and any(resolved == root or root in resolved.parents for root in self.roots):
            return resolved
        # Same words whether or not the path exists: a client learns nothing about the rest of the disk.
        raise SceneFileError(raw, "a path inside the folders this viewer serves (its command-line scenes and "
                             "--data-dir folders; start it with --open-anywhere to lift this)", "a path outside them")

    def reads(self):
        """A context (for the thread that loads) in which every file read stays inside the roots."""
        return contextlib.nullcontext() if self.anywhere else confined_reads(*self.roots)


def read_camera_path(paths: PathConfinement, raw: str):
    """The :class:`lyra.render.paths.CameraPath` in the JSON file ``raw`` names, for a client.

    Confined like Open path (same refusal whether the path exists or not), read inside
    :meth:`PathConfinement.reads` (FIFOs and devices refused before opening, symlinks not followed),
    at most :data:`MAX_CAMERA_PATH_BYTES`; errors name the path, never the file's content.
    """
    from lyra.render.paths import CameraPath

    path = paths.check(raw)
    expected = "a camera-path JSON file (an object with a 'keyframes' list)"
    if path.suffix.lower() != ".json":
        raise CameraPathError(f"{raw}: expected {expected} ending in .json")
    try:
        with paths.reads(), open_regular(path, expected) as handle:
            text = handle.read(MAX_CAMERA_PATH_BYTES + 1)
    except LyraError:
        raise
    except OSError as exc:
        raise SceneFileError(path, expected, f"an OS error ({exc.strerror or type(exc).__name__})") from None
    if len(text) > MAX_CAMERA_PATH_BYTES:
        raise CameraPathError(f"{path}: expected {expected} of at most {MAX_CAMERA_PATH_BYTES >> 20} MiB, found a larger file")
    try:
        return CameraPath.from_dict(json.loads(text), str(path))
    except (ValueError, RecursionError, CameraPathError):  # the messages of both quote the content: not shown
        raise CameraPathError(f"{path}: expected {expected}, each keyframe with a 'position' and a 'look_at' or "
                              "'wxyz' of finite numbers (and 'fov_deg' in 0..180), found a file that is not one") from None


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

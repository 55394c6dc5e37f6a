"""Browser uploads after they arrived: onto disk at once, then used by a job the user can cancel.

Every panel that takes an upload (Scene, Generate) goes through here:

* :func:`safe_upload_name`: a file name from the browser, stripped of folders and odd characters;
* :func:`write_upload`: the bytes into a fresh private temp folder (the caller removes it);
  :func:`save_upload_into`: into a folder the caller keeps (the Generate panel's scratch); a full disk or any other OS refusal is a :class:`lyra.errors.SceneFileError` that says so,
  never "internal error: OSError";
* :func:`start_upload_job`: write the upload, then run ``use(job, path)`` as a background
  job (progress, Cancel, errors as notifications); the temp folder goes when the job ends.

The upload's bytes are held only until they are on disk, so :class:`viewer.security.UploadLimiter`'s
cap on upload memory counts them exactly while its callback runs.
"""

from __future__ import annotations

import errno
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import viser

from lyra.errors import LyraError, SceneFileError
from lyra.fileio import atomic_write


def safe_upload_name(name: str) -> str:
    """A file name from a browser upload, stripped of folders and odd characters."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base or "upload"


def write_upload(uploaded: viser.UploadedFile, max_bytes: int) -> Path:
    """Write an upload into a new temp folder; returns the file's path (remove ``path.parent`` when done).

    Raises SceneFileError for an upload over ``max_bytes`` or when the disk refuses it (full, read-only).
    """
    size = len(uploaded.content)
    if size > max_bytes:
        raise SceneFileError(uploaded.name[:80], f"an upload of at most {max_bytes / 2**20:g} MiB", f"{size / 2**20:.1f} MiB")
    try:
        folder = Path(tempfile.mkdtemp(prefix="lyra-upload-"))
    except OSError as exc:
        raise _disk_error(Path(tempfile.gettempdir()), size, exc) from None
    try:
        return save_upload_into(uploaded, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def save_upload_into(uploaded: viser.UploadedFile, folder: Path) -> Path:
    """Write an upload as ``folder/<safe name>`` (the folder is created); a full disk is a SceneFileError saying so."""
    size = len(uploaded.content)
    path = Path(folder) / safe_upload_name(uploaded.name)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as handle:
            handle.write(uploaded.content)
    except (OSError, SceneFileError) as exc:
        cause = (exc.__cause__ or exc.__context__) if isinstance(exc, SceneFileError) else exc
        raise _disk_error(Path(folder), size, cause if isinstance(cause, OSError) else exc) from None
    return path


def _disk_error(folder: Path, size: int, exc: BaseException) -> SceneFileError:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SceneFileError(None, f"{size / 2**20:.1f} MiB of free space in the temp folder for the upload",
                              f"a full disk at {folder.parent} (free space there, or set TMPDIR to a larger drive)")
    if isinstance(exc, SceneFileError):
        return exc
    return SceneFileError(None, f"a writable temp folder for the upload ({folder.parent})",
                          f"an OS error ({getattr(exc, 'strerror', None) or type(exc).__name__})")


def start_upload_job(app, uploaded: viser.UploadedFile, client: viser.ClientHandle | None,
                     use: Callable[[object, Path], object]) -> object | None:
    """Write ``uploaded`` to disk (here, on the callback thread: a bounded copy) and run ``use(job, path)`` as a job.

    Returns the :class:`viewer.jobs.Job`, or None when the upload could not be written (the client is told why).
    """
    label = f"Upload {uploaded.name[:60]}"
    try:
        path = write_upload(uploaded, app.max_upload_bytes)
    except LyraError as exc:
        app.notify(f"{label} failed", str(exc), client, error=True)
        return None

    def run(job):
        try:
            job(0.0, f"loading {path.name}")
            return use(job, path)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)

    return app.start_job(label, run, client)

"""Atomic file writes: a reader never sees a half-written file.

Every writer in the project goes through :func:`atomic_write` (temp file in the
target's folder, fsync, ``os.replace``), so a crash or a full disk leaves the
previous file intact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, overwrite: bool = True) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success rename it over ``path``.

    Raises FileExistsError when ``overwrite`` is False and ``path`` exists.
    On any exception the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path``.

    An existing ``path`` is moved aside first and deleted only after the new
    folder is in place, so a failure at any point leaves one complete folder.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp_dir
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    # A folder cannot be renamed over another, so the old one steps aside first
    # and comes back if the swap fails: ``path`` is always one complete folder.
    aside = None
    if path.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent)) / "previous"
        os.replace(path, aside)
    try:
        os.replace(tmp_dir, path)
    except BaseException:
        if aside is not None:
            os.replace(aside, path)
            shutil.rmtree(aside.parent, ignore_errors=True)
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    if aside is not None:
        shutil.rmtree(aside.parent, ignore_errors=True)

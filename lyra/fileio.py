"""Safe file access: atomic writes, create-if-absent, and opening only regular files.

Writing: every writer in the project goes through :func:`atomic_write` (temp
file in the target's folder, fsync, rename) or :func:`atomic_directory`, so a
crash or a full disk leaves the previous file intact. Without ``overwrite`` the
final step is an atomic create-if-absent (``renameat2(RENAME_NOREPLACE)``,
else a hard link, else an exclusive reservation of the name), so two writers
racing for one new name cannot both succeed. Results honour the umask (an
overwritten file keeps its mode; files a library wrote into an atomic folder get
the umask's mode too, :func:`apply_umask`). Temporaries are named
``.<name>.lyra-<pid>.<random>.tmp``; :func:`clean_stale_temporaries` removes
those whose writer is gone (it runs before every write into a folder).

A folder being replaced steps aside first, into ``.<name>.lyra-<pid>.<random>.old/<name>``.
A writer killed between that step and the new folder's arrival leaves no
``<name>`` at all; the next save into that folder, and the next open of
``<name>`` (:func:`recover_set_aside`), move what was set aside back. A folder
set aside is deleted only once a new ``<name>`` is in place.

Reading: :func:`open_regular` / :func:`require_regular_file` refuse FIFOs,
devices and sockets *before* anything could block on them (a FIFO open or
read waits forever for a writer). Inside :func:`confined_reads` (the viewer's
Open path, a sequence's frames, a SOG's member files) they also refuse a
symbolic link as the last component (``O_NOFOLLOW``) and any file whose
*opened descriptor* lies outside the given folders: the check is on what was
opened, so a folder swapped for a symlink between a check and the open
(``renameat2(RENAME_EXCHANGE)``) cannot bring in an outside file.

OS errors become :class:`lyra.errors.SceneFileError` with the OS reason; a
name taken without ``overwrite`` raises ``FileExistsError`` (callers turn it
into their own message).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import ctypes.util
import errno
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lyra.errors import SceneFileError

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

TEMP_TAG = "lyra"
STALE_AFTER_S = 24 * 3600  # a temp file this old is stale even when its pid is alive (pid reuse, other hosts)
MAX_NAME_CHARS = 255  # an export name typed into the viewer (relative path)
MAX_NAME_DEPTH = 16
MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux and macOS
_PREFIX_NAME_CHARS = 64  # how much of the target's name goes into a temp name (keeps it under NAME_MAX)
_TEMP_NAME = re.compile(rf"^\..*\.{TEMP_TAG}-(\d+)\.[A-Za-z0-9_]+\.(tmp|old)$")
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


# ----------------------------------------------------------------- reading
# Each level is a tuple of resolved folders; a read must lie inside one folder of EVERY level.
_confinement: contextvars.ContextVar[tuple[tuple[Path, ...], ...]] = contextvars.ContextVar("lyra_confinement", default=())
_OUTSIDE = "a file inside the folders it may be read from (symbolic links are not followed there)"


@contextlib.contextmanager
def confined_reads(*roots: str | os.PathLike) -> Iterator[None]:
    """Within this block (this thread), reads through this module stay inside ``roots`` (see the module docstring).

    Nested blocks add up: a read must satisfy every block it is in.
    """
    level = tuple(Path(os.path.realpath(r)) for r in roots)
    token = _confinement.set((*_confinement.get(), level))
    try:
        yield
    finally:
        _confinement.reset(token)


def _inside(real: Path) -> bool:
    return all(any(real == root or root in real.parents for root in level) for level in _confinement.get())


def _descriptor_path(fd: int) -> Path | None:
    """Where the file open on ``fd`` really is (Linux ``/proc``, macOS ``F_GETPATH``); None where unknown."""
    with contextlib.suppress(OSError):
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    if hasattr(fcntl, "F_GETPATH"):
        with contextlib.suppress(OSError):
            return Path(os.fsdecode(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).rstrip(b"\0")))
    return None


def _check_confined(path: str | os.PathLike, fd: int, what: str) -> None:
    """SceneFileError unless what is open on ``fd`` lies inside the current confinement."""
    if not _confinement.get():
        return
    real = _descriptor_path(fd)
    if real is None:
        real = Path(os.path.realpath(path))  # no way to ask the descriptor here: the path's target now
    if not _inside(real):
        raise SceneFileError(path, _OUTSIDE, "a path outside them")


def _stat(path: str | os.PathLike) -> os.stat_result:
    """``os.stat``, or ``os.lstat`` inside :func:`confined_reads` (a symlink is then refused, not followed)."""
    if not _confinement.get():
        return os.stat(path)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        raise SceneFileError(path, _OUTSIDE, "a symbolic link")
    return info


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "a special file"


def require_regular_file(path: str | os.PathLike, what: str = "a regular file") -> os.stat_result:
    """``os.stat(path)`` of a regular file; SceneFileError (without opening it) for anything else."""
    try:
        info = _stat(path)
    except OSError as exc:
        raise SceneFileError(path, what, f"an OS error ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise SceneFileError(path, what, _kind(info.st_mode))
    return info


def require_file_or_folder(path: str | os.PathLike, what: str = "a scene file or folder") -> os.stat_result:
    """``os.stat(path)`` of a regular file or a folder; SceneFileError for devices, FIFOs, sockets, nothing."""
    try:
        info = _stat(path)
    except FileNotFoundError:
        if not recover_set_aside(path):
            raise SceneFileError(path, "an existing file or folder", "nothing at that path") from None
        info = _stat(path)
    except OSError as exc:
        raise SceneFileError(path, what, f"an OS error ({exc.strerror or type(exc).__name__})") from None
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise SceneFileError(path, what, _kind(info.st_mode))
    return info


def real_folder(path: str | os.PathLike) -> Path:
    """The real path of the folder ``path``, read from an open descriptor and checked against the confinement.

    A reader confines what it reads below a folder to this path (not to a name that could be swapped later).
    """
    fd = _open_confined(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0), "a folder")
    try:
        return _descriptor_path(fd) or Path(os.path.realpath(path))
    finally:
        os.close(fd)


def _open_confined(path: str | os.PathLike, flags: int, what: str) -> int:
    """``os.open`` that, inside a :func:`confined_reads` block, follows no final symlink and checks where the
    descriptor really is; SceneFileError otherwise (the descriptor closed)."""
    if _confinement.get():
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and _confinement.get():
            raise SceneFileError(path, _OUTSIDE, "a symbolic link") from None
        raise SceneFileError(path, what, f"an OS error ({exc.strerror or type(exc).__name__})") from None
    try:
        _check_confined(path, fd, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: str | os.PathLike, what: str = "a regular file", buffering: int = -1) -> IO[bytes]:
    """Open a regular file for binary reading; never blocks on a FIFO or device.

    The type is checked before opening, and again on the open descriptor
    (``O_NONBLOCK`` makes a FIFO swapped in between open at once instead of waiting).
    """
    require_regular_file(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = _open_confined(path, flags, what)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SceneFileError(path, what, _kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=buffering)
    except BaseException:
        os.close(fd)
        raise


# ----------------------------------------------------------------- names
def check_file_name(name: str, *, max_chars: int = MAX_NAME_CHARS, max_depth: int = MAX_NAME_DEPTH) -> str:
    """``name`` (a relative file name, maybe with folders) if it is a sane name to create; else SceneFileError.

    Refused: empty names, control and format characters (newlines, NUL,
    right-to-left overrides, zero-width characters), more than ``max_chars``
    characters or ``max_depth`` folder levels, components over 255 bytes,
    ``.``/``..`` as the final component, backslashes and a trailing slash.
    """
    shown = ascii(name[:40]) + ("..." if len(name) > 40 else "")
    if not name or not name.strip():
        raise SceneFileError(None, "a file name", "an empty name")
    bad = sorted({f"U+{ord(c):04X}" for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")})
    if bad:
        raise SceneFileError(None, "a file name without control or invisible formatting characters",
                             f"{shown} containing {', '.join(bad[:5])}")
    if len(name) > max_chars:
        raise SceneFileError(None, f"a file name of at most {max_chars} characters", f"{len(name)} characters")
    parts = name.split("/")
    if len(parts) > max_depth:
        raise SceneFileError(None, f"a file name at most {max_depth} folders deep", f"{len(parts)} levels")
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT_BYTES for part in parts):
        raise SceneFileError(None, f"folder and file names of at most {MAX_COMPONENT_BYTES} bytes each", shown)
    if "\\" in name or name.endswith("/") or parts[-1] in ("", ".", ".."):
        raise SceneFileError(None, "a file name (no trailing '/', '.', '..' or backslash)", shown)
    return name


# ----------------------------------------------------------------- modes
_umask_lock = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (``/proc/self/status``)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    # Elsewhere the only way is set-and-restore; the lock keeps our own threads out of the window.
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _final_mode(path: Path, default: int) -> int:
    """Mode for the file or folder about to land at ``path``: the existing one's, else ``default & ~umask``."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(os.stat(path).st_mode)
    return default & ~current_umask()


# ----------------------------------------------------------------- temporaries
def _temp_prefix(path: Path) -> str:
    return f".{path.name[:_PREFIX_NAME_CHARS]}.{TEMP_TAG}-{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _abandoned(entry: os.DirEntry, now: float, max_age_s: float) -> re.Match | None:
    """The name match of one of our temporaries whose writer is gone (or that is older than ``max_age_s``)."""
    match = _TEMP_NAME.match(entry.name)
    if not match:
        return None
    try:
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return None
    return None if _pid_alive(int(match.group(1))) and age < max_age_s else match


def _restore_set_aside(folder: Path, entry: os.DirEntry) -> str:
    """For an abandoned ``.old`` folder: move the folder it holds back to its name if that name is free.

    Returns "restored", "superseded" (the name holds a newer folder: what was set aside may go) or "kept"
    (not understood, or the move failed: left alone, never deleted).
    """
    try:
        children = [c for c in os.scandir(entry.path)]
    except OSError:
        return "kept"
    if not children:
        return "superseded"  # killed before anything was moved aside
    if len(children) != 1 or not children[0].is_dir(follow_symlinks=False):
        return "kept"
    name = children[0].name
    if name == "previous":  # written by an older version: the target's name is in the temp name, unless cut short
        name = entry.name[1:].rsplit(f".{TEMP_TAG}-", 1)[0]
        if len(name) >= _PREFIX_NAME_CHARS:
            return "kept"
    target = folder / name
    if os.path.lexists(target):
        return "superseded"
    try:
        publish_directory(Path(children[0].path), target)
    except OSError:
        return "kept"
    with contextlib.suppress(OSError):
        os.rmdir(entry.path)
    return "restored"


def clean_stale_temporaries(folder: str | os.PathLike, *, max_age_s: float = STALE_AFTER_S) -> list[str]:
    """Remove our own temporaries in ``folder`` left by writers that died (or older than ``max_age_s``).

    Only names of our pattern (``.<name>.lyra-<pid>.<random>.tmp|.old``) are
    touched; returns the names removed. A folder set aside (``.old``) whose
    name is missing is moved back instead (:func:`recover_set_aside`). Never
    raises for an unreadable folder.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _abandoned(entry, now, max_age_s)
        if not match:
            continue
        try:
            if match.group(2) == "old" and entry.is_dir(follow_symlinks=False):
                if _restore_set_aside(Path(folder), entry) != "superseded":
                    continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue  # another cleaner got it first, or it is not ours to remove
    return removed


def recover_set_aside(path: str | os.PathLike) -> bool:
    """If ``path`` is missing because a writer died mid-swap, move the folder it set aside back; True if done.

    Readers call this before saying a folder is not there.
    """
    path = Path(path)
    if os.path.lexists(path):
        return False
    prefix = f".{path.name[:_PREFIX_NAME_CHARS]}.{TEMP_TAG}-"
    try:
        entries = [e for e in os.scandir(path.parent) if e.name.startswith(prefix) and e.name.endswith(".old")]
    except OSError:
        return False
    now = time.time()
    for entry in entries:
        if _abandoned(entry, now, STALE_AFTER_S) and entry.is_dir(follow_symlinks=False):
            if _restore_set_aside(path.parent, entry) == "restored" and os.path.lexists(path):
                return True
    return False


# ----------------------------------------------------------------- create-if-absent
def _load_renameat2():
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.renameat2
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        function.restype = ctypes.c_int
        return function
    return None


_renameat2 = _load_renameat2()
_NOT_SUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EXDEV, errno.EMLINK}


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """``renameat2(src, dst, RENAME_NOREPLACE)``; True if done, False if unsupported here; FileExistsError if taken."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code == errno.EEXIST:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    if code in _NOT_SUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(dst))


def publish_file(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Move the finished temp file ``tmp`` to ``path``; without ``overwrite``, atomically only if ``path`` is free."""
    if overwrite:
        os.replace(tmp, path)
        return
    if _rename_noreplace(tmp, path):
        return
    try:
        os.link(tmp, path)  # fails with FileExistsError if the name is taken: the atomic check
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NOT_SUPPORTED:
            raise
        # No hard links here (some network and FAT file systems): reserve the name exclusively, then fill it.
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def publish_directory(tmp: Path, path: Path) -> None:
    """Move the finished temp folder ``tmp`` to the free name ``path``, atomically; FileExistsError if taken."""
    if _rename_noreplace(tmp, path):
        return
    # Fallback: reserve the name with an (atomic, exclusive) mkdir; a folder may be renamed over an empty one.
    os.mkdir(path)
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        raise


# ----------------------------------------------------------------- writing
def _os_error(path: Path, exc: OSError) -> SceneFileError:
    return SceneFileError(path, "a writable location", f"an OS error ({exc.strerror or exc})")


def _prepare_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SceneFileError(path, "a folder that exists or can be created",
                             f"an OS error for {path.parent} ({exc.strerror or type(exc).__name__})") from None
    clean_stale_temporaries(path.parent)


def ensure_writable_folder(path: str | os.PathLike) -> None:
    """Check early that a file can be written at ``path`` (its folder exists or is created, and takes files).

    Long jobs (renders, conversions) call this before working, so an
    unwritable target fails in a second with a SceneFileError, not at the end.
    """
    path = Path(path)
    _prepare_folder(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _os_error(path, exc) from None
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, overwrite: bool = True) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success it becomes ``path``.

    Raises FileExistsError when ``overwrite`` is False and ``path`` exists
    (checked first, and again atomically at the end), SceneFileError when
    ``path`` is a folder or the OS refuses a step. On any exception the temp
    file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    if path.is_dir():
        raise SceneFileError(path, "a file path", "an existing folder")
    _prepare_folder(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), _final_mode(path, 0o666))
            os.fsync(handle.fileno())
        publish_file(Path(tmp_name), path, overwrite=overwrite)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise _os_error(path, exc) from None
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path``.

    An existing ``path`` is moved aside first and deleted only after the new
    folder is in place, so a failure at any point leaves one complete folder.
    Without ``overwrite`` the final move is create-if-absent (FileExistsError).
    """
    path = Path(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    _prepare_folder(path)
    try:
        tmp_dir = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
        os.chmod(tmp_dir, _final_mode(path, 0o777))
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        yield tmp_dir
        apply_umask(tmp_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    try:
        _swap_directory(tmp_dir, path, overwrite)
    except FileExistsError:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    except OSError as exc:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise _os_error(path, exc) from None


def apply_umask(folder: str | os.PathLike) -> None:
    """Give every file and folder under ``folder`` the umask's mode (``0o666`` / ``0o777`` masked).

    Libraries that write into our temp folders choose their own modes (safetensors, and so
    ``save_pretrained``, create files 0600); what we publish follows the umask like every other write.
    Symlinks are left alone.
    """
    mask = current_umask()
    for root, folders, files in os.walk(folder):
        for name in folders:
            with contextlib.suppress(OSError):
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), 0o777 & ~mask)
        for name in files:
            with contextlib.suppress(OSError):
                if not os.path.islink(os.path.join(root, name)):
                    os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _swap_directory(tmp_dir: Path, path: Path, overwrite: bool) -> None:
    if not overwrite or not os.path.lexists(path):
        publish_directory(tmp_dir, path)
        return
    # A folder cannot be renamed over another, so the old one steps aside first
    # and comes back if the swap fails: ``path`` is always one complete folder.
    aside = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent)) / path.name
    os.replace(path, aside)
    try:
        os.replace(tmp_dir, path)
    except BaseException:
        os.replace(aside, path)
        shutil.rmtree(aside.parent, ignore_errors=True)
        raise
    shutil.rmtree(aside.parent, ignore_errors=True)


MAX_IDENTITY_FILES = 10_000


def file_identity(path: str | os.PathLike | None) -> dict | None:
    """What tells one model file or folder from another without reading it: path, sizes and mtimes.

    A folder (a diffusers model) lists its files (relative path, size, mtime in ns), sorted; ``None``
    stays ``None`` (no model). Used in resume keys: another checkpoint at the same path differs in size
    or mtime, another path differs by name.
    """
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        info = path.stat()
    except OSError:
        return {"path": str(path), "missing": True}
    if not path.is_dir():
        return {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    files = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            full = Path(root) / name
            try:
                stat = full.stat()
            except OSError:
                continue
            files.append([str(full.relative_to(path)), stat.st_size, stat.st_mtime_ns])
            if len(files) >= MAX_IDENTITY_FILES:
                return {"path": str(path), "files": files, "truncated": True}
    return {"path": str(path), "files": files}

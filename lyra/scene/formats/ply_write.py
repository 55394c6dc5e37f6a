"""Writing standard 3DGS PLY files (the INRIA layout); reading lives in :mod:`lyra.scene.formats.ply`.

Layout written: ``x y z nx ny nz f_dc_0..2 f_rest_0..M-1 opacity scale_0..2
rot_0..3``, binary little-endian float32 (248 bytes per splat at SH degree
3), then any 1-D numeric extras as extra properties. ``f_rest`` is
channel-major, opacity a logit, scales logs, rot (w, x, y, z).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lyra.errors import SceneFileError
from lyra.fileio import atomic_write
from lyra.scene.formats.checks import SceneFileWarning
from lyra.scene.formats.ply_header import ORIGIN_COMMENT, format_header
from lyra.scene.gaussians import Gaussians

CHUNK_BYTES = 1 << 21  # rows built per write: small enough to stay in cache
WRITE_THREADS = min(2, os.cpu_count() or 1)  # measured on 2 cores (the CI machine); more are untested
MIN_CHUNKS_PER_THREAD = 4  # below this a thread's start-up costs more than it saves
_NORMALS = ["nx", "ny", "nz"]
_DC = ["f_dc_0", "f_dc_1", "f_dc_2"]
_TAIL = ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def _writable_extras(gaussians: Gaussians, path: Path) -> dict[str, np.ndarray]:
    """1-D extras with a PLY scalar type, as numpy arrays; others are skipped with a warning."""
    kept, skipped = {}, []
    for name, value in gaussians.extras.items():
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        code = array.dtype.kind + str(array.dtype.itemsize)
        if array.ndim == 1 and code in ("i1", "u1", "i2", "u2", "i4", "u4", "f4", "f8") and re.fullmatch(r"\S+", name):
            kept[name] = array
        else:
            skipped.append(name)
    if skipped:
        warnings.warn(f"{path}: not writing extra attributes {skipped} (PLY holds 1-D numeric columns only)",
                      SceneFileWarning, stacklevel=3)
    return kept


def write(gaussians: Gaussians, path: str | Path, *, sh_degree: int | None = None, overwrite: bool = True,
          normals: bool = True) -> None:
    """Write a binary little-endian INRIA-layout PLY atomically (see module docstring).

    ``sh_degree`` truncates or zero-pads the SH bands. Raises SceneFileError when
    ``path`` exists and ``overwrite`` is False, or when given a sequence.
    """
    path = Path(path)
    if not isinstance(gaussians, Gaussians):
        raise SceneFileError(path, "a static Gaussians scene for a PLY file", f"a {type(gaussians).__name__} (save sequences as a folder)")
    if sh_degree is not None:
        gaussians = gaussians.with_sh_degree(sh_degree)
    gaussians = gaussians.to("cpu")
    n, k = len(gaussians), gaussians.sh.shape[1]
    extras = _writable_extras(gaussians, path)
    normal_cols = [(name, "f4") for name in _NORMALS] if normals else []
    rest_names = [f"f_rest_{i}" for i in range(3 * (k - 1))]
    core = [(c, "f4") for c in ["x", "y", "z"]] + normal_cols + [(c, "f4") for c in _DC + rest_names]
    core += [(c, "f4") for c in _TAIL]
    tail = [(name, a.dtype.kind + str(a.dtype.itemsize)) for name, a in extras.items() if not (normals and name in _NORMALS)]
    props = core + tail
    names = [p for p, _ in props]
    if len(set(names)) != len(names):
        raise SceneFileError(path, "extra attribute names distinct from the 3DGS properties", f"properties {names}")
    comments = ["written by lyra-studio (3DGS INRIA layout)"]
    if gaussians.origin and gaussians.origin.isidentifier():
        comments.append(ORIGIN_COMMENT + gaussians.origin)
    header = format_header([("vertex", n, props)], comments=comments)
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as handle:
            handle.write(header)
            if all(t == "f4" for _, t in props):
                _stream_float_rows(handle, gaussians, extras, names)
            else:
                rows = np.empty(n, np.dtype([(p, "<" + t) for p, t in props]))
                _fill_structured_rows(rows, gaussians, extras, normals, rest_names)
                handle.write(memoryview(rows).cast("B"))
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None


class _FloatRows:
    """Builds chunks of float32 file rows from the scene's arrays (float32 views where possible)."""

    def __init__(self, gaussians: Gaussians, extras: dict[str, np.ndarray], names: list[str]):
        n = len(gaussians)
        self.col = {name: i for i, name in enumerate(names)}
        self.width = len(names)
        self.k = gaussians.sh.shape[1]
        f32 = lambda t: t.detach().to(torch.float32).numpy()  # noqa: E731 - zero-copy for float32 CPU tensors
        self.means, self.quats, self.sh = (f32(t) for t in (gaussians.means, gaussians.quats, gaussians.sh))
        self.extras = extras
        # The inverse activations run once over the contiguous arrays (SIMD ufuncs);
        # ufuncs writing straight into strided row columns are several times slower.
        self.opacity_logits = np.empty(n, np.float32)
        self.log_scales = np.empty((n, 3), np.float32)
        _inverse_activations(gaussians, self.opacity_logits, self.log_scales)

    def new_buffer(self, rows: int) -> np.ndarray:
        """A ``[rows, width]`` buffer for :meth:`fill`, with the zero normals (columns no chunk changes) set once."""
        buffer = np.empty((rows, self.width), "<f4")
        for name in _NORMALS:
            if name in self.col and name not in self.extras:
                buffer[:, self.col[name]] = 0.0
        return buffer

    def fill(self, rows: np.ndarray, start: int) -> None:
        """Fill ``rows [m, width]`` (a slice of :meth:`new_buffer`) with file rows ``start .. start + m``."""
        m, col, k = len(rows), self.col, self.k
        s = slice(start, start + m)
        for i, axis in enumerate("xyz"):
            rows[:, col[axis]] = self.means[s, i]
        for name in _NORMALS:
            if name in col and name in self.extras:  # absent normals are zero: see new_buffer
                rows[:, col[name]] = self.extras[name][s]
        dc = col["f_dc_0"]
        if k > 1:
            rows[:, dc + 3 : dc + 3 * k].reshape(m, 3, k - 1, copy=False)[:] = self.sh[s, 1:].transpose(0, 2, 1)
        for c in range(3):  # after the higher bands: the same source cache lines
            rows[:, dc + c] = self.sh[s, 0, c]
        rows[:, col["opacity"]] = self.opacity_logits[s]
        for i in range(3):
            rows[:, col[f"scale_{i}"]] = self.log_scales[s, i]
        for i in range(4):
            rows[:, col[f"rot_{i}"]] = self.quats[s, i]
        for name, array in self.extras.items():
            if name not in _NORMALS:
                rows[:, col[name]] = array[s]


def _stream_float_rows(handle, gaussians: Gaussians, extras: dict[str, np.ndarray], names: list[str]) -> None:
    """Build float32 rows a cache-sized chunk at a time and write each chunk after the header.

    Filling a small buffer column by column and writing it keeps the rows in
    cache; building all 236 MB of a 1M-splat file first would write and then
    re-read it from memory. Large scenes are split into row ranges built and
    written by parallel threads with ``os.pwrite`` at their own offsets (numpy's
    copies and the write syscall release the GIL; bench/io.py measures it).
    """
    builder = _FloatRows(gaussians, extras, names)
    n, row_bytes = len(gaussians), 4 * builder.width
    rows_per_chunk = max(1, CHUNK_BYTES // row_bytes)
    threads = max(1, min(WRITE_THREADS, n // (rows_per_chunk * MIN_CHUNKS_PER_THREAD)))
    handle.flush()
    fd, base = handle.fileno(), handle.tell()  # the header is written; rows go after it

    def write_range(first: int, stop: int) -> None:
        buffer = builder.new_buffer(rows_per_chunk)  # reused for every chunk: stays in cache
        for start in range(first, stop, rows_per_chunk):
            rows = buffer[: min(rows_per_chunk, stop - start)]
            builder.fill(rows, start)
            _write_at(fd, memoryview(rows).cast("B"), base + start * row_bytes)
            _start_writeback(fd, base + start * row_bytes, len(rows) * row_bytes)

    bounds = [n * i // threads for i in range(threads + 1)]
    if threads == 1:
        write_range(0, n)
    else:
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(write_range, a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]:
                done.result()  # re-raises a thread's error (a full disk, say)
    handle.seek(base + n * row_bytes)


def _libc_sync_file_range():
    """Linux's ``sync_file_range`` from libc (Python's os module lacks it), or None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_SYNC_FILE_RANGE = _libc_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writing the range's dirty pages back; do not wait


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a just-written range to disk, without waiting.

    The kernel otherwise holds the dirty pages until ``atomic_write``'s fsync,
    which then waits for all 236 MB of a 1M-splat file at once; started per
    chunk, the disk works while the next chunks are built (bench/io.py: the
    fsync'd write of a 236 MB buffer drops from ~0.14 s to ~0.09 s). Only a
    hint: durability still comes from that fsync, and failures are ignored.
    """
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _write_at(fd: int, data: memoryview, offset: int) -> None:
    """``os.pwrite`` all of ``data`` at ``offset`` (it may write less than asked)."""
    while len(data):
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def _inverse_activations(gaussians: Gaussians, opacity_out: np.ndarray, log_scale_out: np.ndarray) -> None:
    """Write logit(opacity) into ``opacity_out [N]`` and log(scale) into ``log_scale_out [N, 3]``."""
    eps = np.float32(2.0**-24)
    p = np.clip(gaussians.opacities.detach().to(torch.float32).numpy(), eps, 1 - eps)
    with np.errstate(divide="ignore"):
        np.log(p, out=opacity_out)
        opacity_out -= np.log1p(-p)  # logit = log p - log(1 - p)
        np.log(gaussians.scales.detach().to(torch.float32).numpy(), out=log_scale_out)


def _fill_structured_rows(rows: np.ndarray, gaussians: Gaussians, extras: dict, normals: bool, rest_names: list[str]) -> None:
    """Field-by-field fill for rows with mixed property types (extras that are not float32)."""
    f32 = lambda t: t.detach().to(torch.float32).numpy()  # noqa: E731
    means, sh, quats = f32(gaussians.means), f32(gaussians.sh), f32(gaussians.quats)
    opacity_logits = np.empty(len(gaussians), np.float32)
    log_scales = np.empty((len(gaussians), 3), np.float32)
    _inverse_activations(gaussians, opacity_logits, log_scales)
    for i, axis in enumerate("xyz"):
        rows[axis] = means[:, i]
        rows[f"f_dc_{i}"] = sh[:, 0, i]
        rows[f"scale_{i}"] = log_scales[:, i]
    k1 = sh.shape[1] - 1
    for j, name in enumerate(rest_names):
        rows[name] = sh[:, 1 + j % k1, j // k1]
    rows["opacity"] = opacity_logits
    for i in range(4):
        rows[f"rot_{i}"] = quats[:, i]
    if normals:
        for name in _NORMALS:
            rows[name] = extras.get(name, 0.0)
    for name, array in extras.items():
        rows[name] = array

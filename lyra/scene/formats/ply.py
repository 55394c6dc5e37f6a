"""Standard 3DGS PLY (the INRIA layout read by SuperSplat, gsplat, nerfstudio).

File convention (see FORMATS.md): one ``vertex`` element with ``x y z``,
``f_dc_0..2``, ``f_rest_0..M-1`` (channel-major: all red higher-order
coefficients, then green, then blue), ``opacity`` (a logit), ``scale_0..2``
(logs) and ``rot_0..3`` (w, x, y, z, normalised here on load).

Reading is liberal: any property order, float or double, either endianness,
ASCII, with or without normals; every other property (normals included) is
kept in ``Gaussians.extras`` under its own name and written back on save.
Splats with NaN/Inf values or zero quaternions raise SceneFileError, or are
dropped with a warning when ``drop_invalid=True``.

Writing (:mod:`lyra.scene.formats.ply_write`, re-exported here as ``write``) uses the INRIA layout: ``x y z nx ny nz f_dc_* f_rest_* opacity
scale_* rot_*`` in binary little-endian float32 (248 bytes per splat at SH
degree 3). Normals are written (zeros unless ``extras`` holds ``nx ny nz``)
because the original 3DGS tools expect them and every other reader ignores
them; ``normals=False`` drops them as gsplat does.

The reader is hand-written instead of using plyfile for binary files:
bench/io.py measures plyfile (PlyData.read + building arrays) at several
times our load time on a 1M-splat file. We parse the header ourselves, check
every count against the file size before allocating, then stream the payload
through a small cache-resident buffer with ``readinto`` and scatter each chunk
into the output arrays, activating it while it is in cache (one pass over the
data, no per-row Python). Large files are read by two threads, each taking the
next chunk of rows as it finishes one.
plyfile is still used for ASCII files and binary files with list properties
before the vertex data, which are rare and small.

Memory layout of the result: ``sh`` is a channel-major ``[N, 3, K]`` buffer
(the file's own order) viewed as ``[N, K, 3]``, so it is not contiguous; call
``.contiguous()`` before handing it to a kernel that needs that.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lyra import limits
from lyra.errors import SceneFileError
from lyra.fileio import confined_reads, open_regular
from lyra.scene.formats.checks import SceneFileWarning, reject_or_drop_invalid, warn_activation_space
from lyra.scene.formats.ply_header import (
    PlyElement,
    PlyHeader,
    check_binary_payload,
    origin_from_comments,
    read_header,
)
from lyra.scene.formats.ply_write import write  # noqa: F401 - each format module exposes read and write
from lyra.scene.gaussians import MIN_QUAT_NORM, Gaussians
from lyra.scene.sh import SH_C0, num_sh_coeffs, sh_degree_from_coeffs

CHUNK_BYTES = 1 << 21  # rows streamed per readinto: small enough to stay in cache (two threads: 4 MiB)
READ_THREADS = min(2, os.cpu_count() or 1)  # measured on 2 cores (the CI machine); more are untested
MIN_CHUNKS_PER_THREAD = 4  # below this a thread's start-up costs more than it saves
_REQUIRED = ["x", "y", "z", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
_DC = ["f_dc_0", "f_dc_1", "f_dc_2"]
_RGB = ["red", "green", "blue"]  # point-cloud style colour, used only when f_dc_* is absent
_REST = re.compile(r"f_rest_(\d+)$")
_NORMALS = ["nx", "ny", "nz"]
_MIN_QUAT_NORM2 = np.float32(MIN_QUAT_NORM) ** 2


# ----------------------------------------------------------------- reading
class _Layout:
    """Which file properties feed which output array, for one vertex element."""

    def __init__(self, path: Path, vertex: PlyElement):
        names = vertex.property_names()
        listed = {p.name for p in vertex.properties if p.list_count_type is not None}
        missing = [n for n in _REQUIRED if n not in names]
        self.color = _DC if all(n in names for n in _DC) else _RGB if all(n in names for n in _RGB) else None
        if self.color is None:
            missing += _DC
        if missing:
            raise SceneFileError(path, "a 3DGS PLY vertex element with x, y, z, f_dc_0..2, opacity, scale_0..2, rot_0..3",
                                 f"properties {names[:20]}{' ...' if len(names) > 20 else ''} (missing {missing})")
        rest = sorted((int(m.group(1)), n) for n in names if (m := _REST.match(n)))
        self.rest = [n for _, n in rest]
        if [i for i, _ in rest] != list(range(len(rest))) or len(rest) not in (0, 9, 24, 45):
            raise SceneFileError(path, "f_rest_0..f_rest_{M-1} with M in 0, 9, 24, 45 (SH degree 0..3)",
                                 f"{len(rest)} f_rest properties {[n for _, n in rest][:6]}...")
        self.sh_degree = sh_degree_from_coeffs(len(rest) // 3 + 1)
        core = set(_REQUIRED) | set(self.color) | set(self.rest)
        bad_lists = sorted(core & listed)
        if bad_lists:
            raise SceneFileError(path, "scalar vertex properties", f"list properties {bad_lists}")
        self.extras = [n for n in names if n not in core and n not in listed]
        self.dropped_lists = sorted(listed)
        self.index = {n: i for i, n in enumerate(names)}


class _Stats:
    """Raw-value facts gathered while activating one range of rows; merged across reader threads."""

    def __init__(self) -> None:
        self.opacity_logit_range = [np.inf, -np.inf]  # for the activation-space warnings
        self.min_log_scale = np.inf
        self.all_quats_nonzero = True
        self.all_scales_finite = True  # exp did not overflow
        self.finite = True  # every raw value finite (False also when not checked)

    def merge(self, other: _Stats) -> None:
        self.opacity_logit_range = [min(self.opacity_logit_range[0], other.opacity_logit_range[0]),
                                    max(self.opacity_logit_range[1], other.opacity_logit_range[1])]
        self.min_log_scale = min(self.min_log_scale, other.min_log_scale)
        self.all_quats_nonzero = self.all_quats_nonzero and other.all_quats_nonzero
        self.all_scales_finite = self.all_scales_finite and other.all_scales_finite
        self.finite = self.finite and other.finite


class _Output:
    """The arrays a read fills with raw file values, then activates in place, slice by slice."""

    def __init__(self, n: int, layout: _Layout, extra_types: dict[str, str]):
        k = num_sh_coeffs(layout.sh_degree)
        self.means = np.empty((n, 3), np.float32)
        self.sh_cm = np.empty((n, 3, k), np.float32)  # channel-major, like the file
        self.opacities = np.empty(n, np.float32)  # logits until activated
        self.scales = np.empty((n, 3), np.float32)  # logs until activated
        self.quats = np.empty((n, 4), np.float32)
        self.extras = {name: np.empty(n, np.dtype(extra_types[name])) for name in layout.extras}

    def activate(self, s: slice, stats: _Stats) -> None:
        """sigmoid(opacity), exp(scale), unit quaternions for rows ``s``, in place; raw-value facts into ``stats``.

        Called per chunk while the rows are still in cache; numpy ufuncs with
        ``out=`` (no temporaries for the big arrays).
        """
        opacities, scales, quats = self.opacities[s], self.scales[s], self.quats[s]
        if len(opacities) == 0:
            return
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # NaN makes these NaN, which only disables the warnings: the invalid-value check reports it.
            stats.opacity_logit_range = [min(stats.opacity_logit_range[0], float(opacities.min())),
                                         max(stats.opacity_logit_range[1], float(opacities.max()))]
            stats.min_log_scale = min(stats.min_log_scale, float(scales.min()))
            np.negative(opacities, out=opacities)
            np.exp(opacities, out=opacities)
            opacities += 1
            np.reciprocal(opacities, out=opacities)
            np.exp(scales, out=scales)
            stats.all_scales_finite = stats.all_scales_finite and bool(np.isfinite(scales.max()))  # exp overflow
            # Column by column: numpy's loops over [n, 4] rows (einsum, broadcast divide)
            # run 4 values at a time and measured ~2x slower in total.
            norm2 = np.square(quats[:, 0])
            for i in range(1, 4):
                norm2 += np.square(quats[:, i])
            nonzero = bool(norm2.min() >= _MIN_QUAT_NORM2)  # False for a (near-)zero quaternion (or a NaN)
            if not nonzero:
                # (Near-)zero quaternions stay as they are (normalising 1e-30 gives NaN or noise);
                # the invalid-value check reports them.
                norm2[norm2 < _MIN_QUAT_NORM2] = 1
            stats.all_quats_nonzero = stats.all_quats_nonzero and nonzero
            np.sqrt(norm2, out=norm2)
            np.reciprocal(norm2, out=norm2)
            for i in range(4):
                quats[:, i] *= norm2


def _adjacent(columns: list[int]) -> slice | list[int]:
    """``columns`` as a slice when they are adjacent and ascending (a view, no gather), else the list."""
    if columns == list(range(columns[0], columns[0] + len(columns))):
        return slice(columns[0], columns[0] + len(columns))
    return columns


class _ChunkCopier:
    """Scatters one chunk of file rows ``[n, width]`` into the output arrays.

    The copy order and grouping are measured, not guessed (bench/io.py, 1M rows):
    single columns into 1-D destinations (numpy's inner loop then runs over the
    rows), except where the destination values share cache lines: the SH
    block goes first and the three DC values follow as one ``[n, 3]`` block
    into the same, still cached, lines (three column passes cost ~5x more).
    """

    def __init__(self, out: _Output, layout: _Layout):
        self.out = out
        index = layout.index
        self.columns = [(out.means[:, i], index[n]) for i, n in enumerate(["x", "y", "z"])]
        self.columns += [(out.opacities, index["opacity"])]
        self.columns += [(out.scales[:, i], index[n]) for i, n in enumerate(_REQUIRED[4:7])]
        self.columns += [(out.quats[:, i], index[n]) for i, n in enumerate(_REQUIRED[7:])]
        self.columns += [(out.extras[n], index[n]) for n in layout.extras]
        self.rest = _adjacent([index[n] for n in layout.rest]) if layout.rest else None
        self.color = _adjacent([index[n] for n in layout.color])
        self.color_is_rgb = layout.color is _RGB

    def copy(self, rows: np.ndarray, s: slice) -> None:
        """Rows ``[n, width]`` of the file into output rows ``s``."""
        for destination, column in self.columns:
            destination[s] = rows[:, column]
        sh = self.out.sh_cm[s]
        if self.rest is not None:
            sh[:, :, 1:] = rows[:, self.rest].reshape(len(rows), 3, -1)
        if self.color_is_rgb:
            sh[:, :, 0] = (rows[:, self.color] / 255.0 - 0.5) / SH_C0
        else:
            sh[:, :, 0] = rows[:, self.color]


def _probably_all_finite(chunk: np.ndarray) -> bool:
    """True when every value is finite, by one BLAS dot product: NaN and Inf propagate into the sum of squares.

    False also for finite values so large that their squares overflow; the
    caller then runs the exact per-splat check, so this only costs time.
    Measured at ~2x faster than ``max()`` plus ``min()`` on cache-hot rows.
    """
    flat = chunk.reshape(-1)
    return bool(np.isfinite(np.dot(flat, flat)))


def _reader_threads(rows: int, rows_per_chunk: int) -> int:
    """Threads for one read: up to ``READ_THREADS``, each with at least ``MIN_CHUNKS_PER_THREAD`` chunks."""
    return max(1, min(READ_THREADS, rows // (rows_per_chunk * MIN_CHUNKS_PER_THREAD)))


def _read_uniform_binary(path: Path, header: PlyHeader, vertex: PlyElement, offset: int, out: _Output,
                         layout: _Layout) -> _Stats:
    """Stream a vertex element whose properties share one type (the counts were checked against the file size).

    The chunks are shared out among parallel threads as they finish, each
    thread with its own file handle and buffer: ``readinto`` and numpy's copies and
    ufuncs release the GIL. One thread spends ~2x the CPU time of a bare
    ``np.fromfile`` (the copies, activation and page faults are each memory
    passes), so only a second core brings the load near that floor; bench/io.py
    prints both (``load_s``, ``load_1thread_s``). Outputs are disjoint row
    ranges, so the threads share nothing but the read-only layout and the chunk counter.
    """
    dtype = np.dtype(header.endian + vertex.properties[0].type)
    row_bytes = len(vertex.properties) * dtype.itemsize
    rows_per_chunk = max(1, CHUNK_BYTES // row_bytes)
    threads = _reader_threads(vertex.count, rows_per_chunk)
    copier = _ChunkCopier(out, layout)
    # Chunks are handed out one at a time (next() on a shared counter is atomic under the GIL), not as
    # fixed ranges: on a loaded machine a thread that loses its core then delays the read by one chunk
    # at most, instead of by its whole range.
    starts = itertools.count(0, rows_per_chunk)

    def stream() -> _Stats:
        return _stream_rows(path, offset, dtype, len(vertex.properties), rows_per_chunk, vertex.count, starts, copier)

    if threads == 1:
        parts = [stream()]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = [future.result() for future in [pool.submit(stream) for _ in range(threads)]]
    stats = parts[0]
    for part in parts[1:]:
        stats.merge(part)
    return stats


def _stream_rows(path: Path, offset: int, dtype: np.dtype, width: int, rows_per_chunk: int, count: int,
                 starts: Iterator[int], copier: _ChunkCopier) -> _Stats:
    """Read the chunks whose first rows ``starts`` yields (until past ``count``) into the outputs, activating each."""
    row_bytes = width * dtype.itemsize
    buffer = np.empty(rows_per_chunk * width, dtype)  # reused for every chunk: stays in cache
    raw = memoryview(buffer).cast("B")
    stats = _Stats()
    with open_regular(path, "a PLY file", buffering=0) as handle:
        for start in starts:
            if start >= count:
                break
            n = min(rows_per_chunk, count - start)
            handle.seek(offset + start * row_bytes)
            if handle.readinto(raw[: n * row_bytes]) != n * row_bytes:
                raise SceneFileError(path, f"{count} vertex rows", "a file that shrank while being read")
            chunk = buffer[: n * width].reshape(n, width)
            if dtype.kind == "f" and stats.finite:  # integer types are always finite
                stats.finite = _probably_all_finite(chunk)
            s = slice(start, start + n)
            copier.copy(chunk, s)
            copier.out.activate(s, stats)
    return stats


def _fill_from_structured(data: np.ndarray, out: _Output, layout: _Layout) -> _Stats:
    """Fill outputs from a structured array (mixed property types, or plyfile's result)."""
    stack = lambda names: np.stack([data[n] for n in names], axis=1)  # noqa: E731
    out.means[:] = stack(["x", "y", "z"])
    out.opacities[:] = data["opacity"]
    out.scales[:] = stack(_REQUIRED[4:7])
    out.quats[:] = stack(_REQUIRED[7:])
    color = stack(layout.color).astype(np.float32)
    out.sh_cm[:, :, 0] = (color / 255.0 - 0.5) / SH_C0 if layout.color is _RGB else color
    if layout.rest:
        out.sh_cm[:, :, 1:] = stack(layout.rest).reshape(len(data), 3, -1)
    for name, array in out.extras.items():
        array[:] = data[name]
    stats = _Stats()
    stats.finite = False  # not checked here: the exact per-splat check runs
    out.activate(slice(None), stats)
    return stats


def _read_with_plyfile(path: Path, header: PlyHeader, sh_degree: int) -> np.ndarray:
    """Vertex rows of an ASCII PLY (or one with list properties) via plyfile, after bounding the counts."""
    import plyfile

    remaining = header.file_size - header.data_offset
    # Every value takes >= 2 bytes in ASCII (digit + separator); every binary row at least its fixed part.
    minimum = 0
    for element in header.elements:
        if header.format == "ascii":
            per_row = 2 * len(element.properties)
        else:
            per_row = sum(int((p.list_count_type or p.type)[1]) for p in element.properties)
        minimum += element.count * per_row
    if minimum > remaining + 1:
        raise SceneFileError(path, f"a payload of at least {minimum} bytes for the header's element counts",
                             f"{remaining} bytes (truncated, or the header counts are wrong)")
    limits.check_splats(path, header.element("vertex").count, sh_degree)  # the decode budget, before parsing
    try:
        with open_regular(path, "a PLY file") as handle:
            ply = plyfile.PlyData.read(handle)
        data = ply["vertex"].data
    except SceneFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - plyfile's many parse errors become one clear error type
        # The type only: plyfile's messages quote the offending payload text.
        raise SceneFileError(path, f"a well-formed {header.format} PLY payload", f"a payload plyfile refused ({type(exc).__name__})") from None
    if data.dtype.names is None or len(data) != header.element("vertex").count:
        raise SceneFileError(path, "vertex rows matching the header", "a payload plyfile could not split into rows")
    return data


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load a 3DGS PLY as activated Gaussians (see module docstring). Raises SceneFileError."""
    path = Path(path)
    header = read_header(path)
    vertex = header.element("vertex")
    if vertex is None:
        raise SceneFileError(path, "a 'vertex' element", f"elements {[e.name for e in header.elements]}")
    if header.element("chunk") is not None:
        raise SceneFileError(path, "a standard 3DGS PLY", "a compressed PLY ('chunk' element); load it as ply-compressed")
    layout = _Layout(path, vertex)
    if layout.dropped_lists:
        warnings.warn(f"{path}: ignoring list properties {layout.dropped_lists}", SceneFileWarning, stacklevel=2)
    endian = header.endian
    types = {p.name: p.type for p in vertex.properties}
    out_extra_types = {n: "=" + types[n] for n in layout.extras}
    fast = header.format != "ascii" and not any(e.has_lists for e in header.elements[: header.elements.index(vertex) + 1])
    if fast:
        offset = check_binary_payload(path, header, "vertex")
        limits.check_splats(path, vertex.count, layout.sh_degree)  # the decode budget, before allocating
        out = _Output(vertex.count, layout, out_extra_types)
        if len({p.type for p in vertex.properties}) == 1:
            stats = _read_uniform_binary(path, header, vertex, offset, out, layout)
        else:
            with open_regular(path, "a PLY file") as handle:
                data = np.fromfile(handle, dtype=vertex.dtype(endian), count=vertex.count, offset=offset)
            stats = _fill_from_structured(data, out, layout)
    else:
        data = _read_with_plyfile(path, header, layout.sh_degree)
        out = _Output(len(data), layout, out_extra_types)
        stats = _fill_from_structured(data, out, layout)
    gaussians = _finish(path, out, stats, drop_invalid)
    origin = origin_from_comments(header.comments)
    return gaussians.replace(origin=origin) if origin else gaussians


class PlyRows:
    """Random access to the rows of a binary 3DGS PLY (memory-mapped): rank splats from two columns, then
    read only the rows chosen.

    What a viewer needs to show the most important splats of a big frame without
    reading the rest: :meth:`log_importance` touches only the opacity and scale
    columns; :meth:`read` activates only the chosen rows, with the same code as
    :func:`read`, so ``PlyRows(path).read(rows)`` equals ``read(path)[rows]`` bit for bit.
    Only binary files whose vertex properties share one float type qualify (what
    every 3DGS tool writes): :meth:`open` returns None for the others.
    Raises SceneFileError for a malformed file, or when a chosen row holds NaN/Inf or a zero quaternion.
    """

    def __init__(self, path: Path, header: PlyHeader, vertex: PlyElement, offset: int, layout: _Layout,
                 confined_to: Path | None = None):
        self.path, self._layout, self._origin = path, layout, origin_from_comments(header.comments)
        self._confined_to = confined_to  # every later read stays inside this folder (lyra.fileio.confined_reads)
        self._dtype = np.dtype(header.endian + vertex.properties[0].type)
        self._shape = (vertex.count, len(vertex.properties))
        self._offset = offset
        self._bounds: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def open(cls, path: str | Path, confined_to: Path | None = None) -> PlyRows | None:
        """A row reader for ``path`` (its header read now, its rows mapped on first use), or None when
        the file is not a uniform-float binary PLY. ``confined_to``: the folder every later read must stay in."""
        path = Path(path)
        header = read_header(path)
        vertex = header.element("vertex")
        if vertex is None or header.format == "ascii" or header.element("chunk") is not None:
            return None
        if len({p.type for p in vertex.properties}) != 1 or vertex.properties[0].type not in ("f4", "f8"):
            return None
        if any(e.has_lists for e in header.elements[: header.elements.index(vertex) + 1]):
            return None
        return cls(path, header, vertex, check_binary_payload(path, header, "vertex"), _Layout(path, vertex), confined_to)

    def __len__(self) -> int:
        return self._shape[0]

    def _mapped(self) -> np.ndarray:  # [N, width] raw file values
        """A fresh read-only map per call, unmapped when the caller drops it: a clip's frames stay
        out of the process's resident memory between reads (re-mapping a cached file costs a few ms)."""
        if self._shape[0] == 0:
            return np.zeros(self._shape, self._dtype)
        confinement = confined_reads(self._confined_to) if self._confined_to else contextlib.nullcontext()
        with confinement, open_regular(self.path, "a PLY file") as handle:
            return np.memmap(handle, self._dtype, mode="r", offset=self._offset, shape=self._shape)

    def log_importance(self) -> np.ndarray:  # [N] float32
        """:func:`lyra.scene.importance.log_importance` from the raw logit-opacity and log-scale columns."""
        from lyra.scene.importance import log_importance, log_sigmoid

        mapped, index = self._mapped(), self._layout.index
        out = np.empty(len(self), np.float32)
        threads = _reader_threads(len(self), 1 << 16)
        bounds = [len(self) * i // threads for i in range(threads + 1)]

        def score(span: tuple[int, int]) -> None:  # numpy's copies and ufuncs release the GIL
            rows = mapped[span[0]:span[1]]
            log_scales = np.stack([rows[:, index[n]] for n in _REQUIRED[4:7]], axis=1)
            out[span[0]:span[1]] = log_importance(log_sigmoid(rows[:, index["opacity"]]), log_scales)

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(score, zip(bounds[:-1], bounds[1:], strict=True)))
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box of the centres ``(min [3], max [3])``, as ``Gaussians.bounds``; read once, then kept."""
        if self._bounds is None:
            mapped, index = self._mapped(), self._layout.index
            columns = [mapped[:, index[n]] for n in ("x", "y", "z")]
            if len(self) == 0:
                self._bounds = (np.zeros(3, np.float32), np.zeros(3, np.float32))
            else:
                self._bounds = (np.array([c.min() for c in columns], np.float32), np.array([c.max() for c in columns], np.float32))
        return self._bounds

    def read(self, rows: np.ndarray) -> Gaussians:
        """Activated Gaussians of file rows ``rows`` (``int [M]``, increasing), in that order.

        Gathered and activated chunk by chunk, on up to ``READ_THREADS`` threads, like :func:`read`.
        """
        rows = np.asarray(rows, np.int64)
        mapped, layout = self._mapped(), self._layout
        out = _Output(len(rows), layout, {n: "=" + self._dtype.str[1:] for n in layout.extras})
        copier = _ChunkCopier(out, layout)
        rows_per_chunk = max(1, CHUNK_BYTES // (self._shape[1] * self._dtype.itemsize))
        threads = _reader_threads(len(rows), rows_per_chunk)
        bounds = [len(rows) * i // threads for i in range(threads + 1)]

        def gather(span: tuple[int, int]) -> _Stats:
            stats = _Stats()
            for start in range(span[0], span[1], rows_per_chunk):
                s = slice(start, min(start + rows_per_chunk, span[1]))
                chunk = mapped[rows[s]]
                if stats.finite:
                    stats.finite = _probably_all_finite(chunk)
                copier.copy(chunk, s)
                out.activate(s, stats)
            return stats

        spans = list(zip(bounds[:-1], bounds[1:], strict=True))
        if threads == 1:
            parts = [gather(spans[0])]
        else:
            with ThreadPoolExecutor(threads) as pool:
                parts = list(pool.map(gather, spans))
        stats = parts[0]
        for part in parts[1:]:
            stats.merge(part)
        gaussians = _finish(self.path, out, stats, drop_invalid=False)
        return gaussians.replace(origin=self._origin) if self._origin else gaussians


def _finish(path: Path, out: _Output, stats: _Stats, drop_invalid: bool) -> Gaussians:
    """Warn about suspicious raw values, validate, wrap the (activated) arrays as Gaussians."""
    finite_range = all(np.isfinite(stats.opacity_logit_range))
    warn_activation_space(path, tuple(stats.opacity_logit_range) if len(out.opacities) >= 2 and finite_range else None,
                          stats.min_log_scale if np.isfinite(stats.min_log_scale) else None)
    gaussians = Gaussians(
        means=torch.from_numpy(out.means),
        quats=torch.from_numpy(out.quats),
        scales=torch.from_numpy(out.scales),
        opacities=torch.from_numpy(out.opacities),
        sh=torch.from_numpy(out.sh_cm).transpose(1, 2),  # [N, 3, K] -> [N, K, 3] view
        extras={name: torch.from_numpy(a) for name, a in out.extras.items()},
    )
    if stats.finite and stats.all_scales_finite and stats.all_quats_nonzero:
        return gaussians  # the streaming checks proved every splat valid
    return reject_or_drop_invalid(gaussians, path, drop_invalid)

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
into the output arrays (one pass over the data, no per-row Python).
plyfile is still used for ASCII files and binary files with list properties
before the vertex data, which are rare and small.

Memory layout of the result: ``sh`` is a channel-major ``[N, 3, K]`` buffer
(the file's own order) viewed as ``[N, K, 3]``, so it is not contiguous; call
``.contiguous()`` before handing it to a kernel that needs that.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import torch

from lyra.errors import SceneFileError
from lyra.scene.formats.checks import SceneFileWarning, reject_or_drop_invalid, warn_activation_space
from lyra.scene.formats.ply_header import PlyElement, PlyHeader, check_binary_payload, read_header
from lyra.scene.formats.ply_write import write  # noqa: F401 - each format module exposes read and write
from lyra.scene.gaussians import Gaussians
from lyra.scene.sh import SH_C0, num_sh_coeffs, sh_degree_from_coeffs

CHUNK_BYTES = 1 << 21  # rows streamed per readinto: small enough to stay in L2/L3 cache
_REQUIRED = ["x", "y", "z", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
_DC = ["f_dc_0", "f_dc_1", "f_dc_2"]
_RGB = ["red", "green", "blue"]  # point-cloud style colour, used only when f_dc_* is absent
_REST = re.compile(r"f_rest_(\d+)$")
_NORMALS = ["nx", "ny", "nz"]


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
        # Raw-value statistics for the activation-space warnings, gathered before activating.
        self.opacity_logit_range = [np.inf, -np.inf]
        self.min_log_scale = np.inf
        self.all_quats_nonzero = True
        self.all_scales_finite = True

    def activate(self, s: slice) -> None:
        """sigmoid(opacity), exp(scale), unit quaternions for rows ``s``, in place.

        Called per chunk while the rows are still in cache; numpy ufuncs with
        ``out=`` (single-threaded, no temporaries for the big arrays).
        """
        opacities, scales, quats = self.opacities[s], self.scales[s], self.quats[s]
        if len(opacities) == 0:
            return
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # NaN makes these NaN, which only disables the warnings: the invalid-value check reports it.
            self.opacity_logit_range = [min(self.opacity_logit_range[0], float(opacities.min())),
                                        max(self.opacity_logit_range[1], float(opacities.max()))]
            self.min_log_scale = min(self.min_log_scale, float(scales.min()))
            np.negative(opacities, out=opacities)
            np.exp(opacities, out=opacities)
            opacities += 1
            np.reciprocal(opacities, out=opacities)
            np.exp(scales, out=scales)
            self.all_scales_finite = self.all_scales_finite and bool(np.isfinite(scales.max()))  # exp overflow
            norms = np.sqrt(np.einsum("ij,ij->i", quats, quats))[:, None]
            nonzero = norms > 0
            self.all_quats_nonzero = self.all_quats_nonzero and bool(nonzero.all())
            quats /= np.where(nonzero, norms, 1)


def _column_copies(out: _Output, layout: _Layout) -> list[tuple[np.ndarray, int]]:
    """(1-D destination view, source column) pairs for every single-column copy.

    Copying column by column is faster than copying ``[n, 3]`` blocks: numpy's
    inner loop then runs over the rows instead of over 3 values at a time.
    """
    copies = [(out.means[:, i], layout.index[n]) for i, n in enumerate(["x", "y", "z"])]
    copies += [(out.scales[:, i], layout.index[n]) for i, n in enumerate(_REQUIRED[4:7])]
    copies += [(out.quats[:, i], layout.index[n]) for i, n in enumerate(_REQUIRED[7:])]
    copies += [(out.opacities, layout.index["opacity"])]
    copies += [(out.extras[n], layout.index[n]) for n in layout.extras]
    if layout.color is _DC:
        copies += [(out.sh_cm[:, c, 0], layout.index[n]) for c, n in enumerate(_DC)]
    return copies


def _read_uniform_binary(path: Path, header: PlyHeader, vertex: PlyElement, offset: int, out: _Output, layout: _Layout) -> bool:
    """Stream a vertex element whose properties share one type; returns True if all values are finite."""
    dtype = np.dtype(header.endian + vertex.properties[0].type)
    width = len(vertex.properties)
    row_bytes = width * dtype.itemsize
    copies = _column_copies(out, layout)
    rgb_columns = [layout.index[n] for n in _RGB] if layout.color is _RGB else None
    rest = [layout.index[n] for n in layout.rest]
    rest_block = bool(rest) and rest == list(range(rest[0], rest[0] + len(rest)))  # a slice: no gather
    rows_per_chunk = max(1, CHUNK_BYTES // row_bytes)
    buffer = np.empty(rows_per_chunk * width, dtype)
    raw = memoryview(buffer).cast("B")
    finite = True
    with open(path, "rb", buffering=0) as handle:
        handle.seek(offset)
        for start in range(0, vertex.count, rows_per_chunk):
            n = min(rows_per_chunk, vertex.count - start)
            if handle.readinto(raw[: n * row_bytes]) != n * row_bytes:
                raise SceneFileError(path, f"{vertex.count} vertex rows", "a file that shrank while being read")
            rows = buffer[: n * width].reshape(n, width)
            s = slice(start, start + n)
            if dtype.kind == "f":
                # NaN propagates through max, and +-Inf shows in max or min: two cheap reductions
                # on cache-hot data. The exact per-splat check runs only when this trips.
                finite = finite and bool(np.isfinite(rows.max()) and np.isfinite(rows.min()))
            for destination, column in copies:
                destination[s] = rows[:, column]
            if rgb_columns is not None:
                out.sh_cm[s, :, 0] = (rows[:, rgb_columns] / 255.0 - 0.5) / SH_C0
            if rest_block:
                out.sh_cm[s, :, 1:] = rows[:, rest[0] : rest[0] + len(rest)].reshape(n, 3, -1)
            elif rest:
                out.sh_cm[s, :, 1:] = rows[:, rest].reshape(n, 3, -1)
            out.activate(s)
    return finite


def _fill_from_structured(data: np.ndarray, out: _Output, layout: _Layout) -> None:
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
    out.activate(slice(None))


def _read_with_plyfile(path: Path, header: PlyHeader) -> np.ndarray:
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
    try:
        ply = plyfile.PlyData.read(str(path))
        data = ply["vertex"].data
    except Exception as exc:  # noqa: BLE001 - plyfile's many parse errors become one clear error type
        raise SceneFileError(path, f"a well-formed {header.format} PLY payload", f"{type(exc).__name__}: {exc}") from None
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
        out = _Output(vertex.count, layout, out_extra_types)
        if len({p.type for p in vertex.properties}) == 1:
            finite = _read_uniform_binary(path, header, vertex, offset, out, layout)
        else:
            data = np.fromfile(path, dtype=vertex.dtype(endian), count=vertex.count, offset=offset)
            _fill_from_structured(data, out, layout)
            finite = False
    else:
        data = _read_with_plyfile(path, header)
        out = _Output(len(data), layout, out_extra_types)
        _fill_from_structured(data, out, layout)
        finite = False
    return _finish(path, out, drop_invalid, finite)


def _finish(path: Path, out: _Output, drop_invalid: bool, finite: bool) -> Gaussians:
    """Warn about suspicious raw values, validate, wrap the (activated) arrays as Gaussians."""
    finite_range = all(np.isfinite(out.opacity_logit_range))
    warn_activation_space(path, tuple(out.opacity_logit_range) if len(out.opacities) >= 2 and finite_range else None,
                          out.min_log_scale if np.isfinite(out.min_log_scale) else None)
    gaussians = Gaussians(
        means=torch.from_numpy(out.means),
        quats=torch.from_numpy(out.quats),
        scales=torch.from_numpy(out.scales),
        opacities=torch.from_numpy(out.opacities),
        sh=torch.from_numpy(out.sh_cm).transpose(1, 2),  # [N, 3, K] -> [N, K, 3] view
        extras={name: torch.from_numpy(a) for name, a in out.extras.items()},
    )
    if finite and out.all_scales_finite and out.all_quats_nonzero:
        return gaussians  # the streaming checks proved every splat valid
    return reject_or_drop_invalid(gaussians, path, drop_invalid)

"""SuperSplat compressed PLY (``.compressed.ply``; gsplat's exporter calls it "ply_compressed").

Layout (binary little-endian PLY, 16 bytes per splat + 1 byte per higher SH coefficient):

* ``chunk`` element, one row per 256 consecutive splats: float ``min_/max_`` of
  x, y, z, of the log-scales (``min_scale_x`` ...), and optionally of the base
  colour r, g, b (older files have no colour bounds: colours are absolute).
* ``vertex`` element, four uint32 per splat:
  ``packed_position`` 11/10/11 bits (x in the top bits), each a unorm lerp
  between the chunk's min and max; ``packed_rotation`` 2 bits for the index
  of the largest quaternion component (in file order w, x, y, z), then the
  other three in 10 bits each as ``c / sqrt(2) + 0.5`` (the largest is
  positive and restored from the unit norm); ``packed_scale`` 11/10/11 bits of
  log-scale within the chunk bounds; ``packed_color`` 8/8/8/8 bits r, g, b
  (within the chunk's colour bounds) and opacity (activated, 0..1).
* optional ``sh`` element (gsplat writes it with no properties at degree 0):
  ``f_rest_0..M-1`` as uchar, channel-major like the
  standard PLY, value ``(q + 0.5) / 256`` mapped from [0, 1] to [-4, 4]
  (0 and 255 are the exact ends).

Splats are written in Morton order of their centres (so chunks are compact),
which reorders them: compare sets, not rows, after a round trip.

The writer is our own vectorised numpy code rather than gsplat's
``export_splats(format="ply_compressed")``: gsplat's runs a Python loop per
256-splat chunk, silently drops splats with opacity < 1/255 (changing the
count), and divides by zero for chunks where an attribute is constant.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from lyra import limits
from lyra.errors import SceneFileError
from lyra.fileio import atomic_write, open_regular
from lyra.scene.formats.checks import reject_or_drop_invalid
from lyra.scene.formats.ply_header import check_binary_payload, format_header, read_header
from lyra.scene.gaussians import Gaussians
from lyra.scene.sh import SH_C0

CHUNK_SIZE = 256
DECODE_BLOCK = 16 * CHUNK_SIZE  # splats decoded at a time (a multiple of CHUNK_SIZE: blocks start on chunk bounds)
_BOUNDS = ["min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
           "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z"]
_COLOR_BOUNDS = ["min_r", "min_g", "min_b", "max_r", "max_g", "max_b"]
_PACKED = ["packed_position", "packed_rotation", "packed_scale", "packed_color"]
_LOG_SCALE_LIMIT = 20.0  # log-scales are clamped to +-20 before quantisation, as SuperSplat does
_OTHER_COMPONENTS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])


# ----------------------------------------------------------------- reading
def _unorm(values: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((values >> shift) & ((1 << bits) - 1)).astype(np.float32) / np.float32((1 << bits) - 1)


def _unpack_111011(values: np.ndarray) -> np.ndarray:  # [N] uint32 -> [N, 3] in [0, 1]
    return np.stack([_unorm(values, 21, 11), _unorm(values, 11, 10), _unorm(values, 0, 11)], axis=1)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1 - t) + hi * t


def _unpack_rotation(values: np.ndarray) -> np.ndarray:  # [N] uint32 -> [N, 4] (file order)
    others = np.stack([_unorm(values, 20, 10), _unorm(values, 10, 10), _unorm(values, 0, 10)], axis=1)
    others = (others - 0.5) * np.float32(math.sqrt(2.0))
    largest = np.sqrt(np.maximum(0.0, 1.0 - (others * others).sum(axis=1)))
    which = (values >> 30).astype(np.int64)
    quats = np.empty((len(values), 4), np.float32)
    rows = np.arange(len(values))
    quats[rows, which] = largest
    quats[rows[:, None], _OTHER_COMPONENTS[which]] = others
    return quats


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load a compressed PLY as activated Gaussians (values within the format's quantisation)."""
    path = Path(path)
    header = read_header(path)
    if header.format != "binary_little_endian":
        raise SceneFileError(path, "a binary_little_endian compressed PLY", f"format {header.format}")
    chunk, vertex, sh_el = header.element("chunk"), header.element("vertex"), header.element("sh")
    if chunk is None or vertex is None:
        raise SceneFileError(path, "'chunk' and 'vertex' elements", f"elements {[e.name for e in header.elements]}")
    chunk_names, vertex_names = chunk.property_names(), vertex.property_names()
    if not set(_BOUNDS) <= set(chunk_names) or any(p.type[0] != "f" for p in chunk.properties):
        raise SceneFileError(path, f"float chunk properties {_BOUNDS} (+ optional colour bounds)", f"{chunk_names}")
    if not set(_PACKED) <= set(vertex_names) or any(p.type != "u4" for p in vertex.properties if p.name in _PACKED):
        raise SceneFileError(path, f"uint vertex properties {_PACKED}", f"{[(p.name, p.type) for p in vertex.properties]}")
    expected_chunks = -(-vertex.count // CHUNK_SIZE)
    if chunk.count != expected_chunks:
        raise SceneFileError(path, f"{expected_chunks} chunks for {vertex.count} splats", f"{chunk.count} chunks")
    rest_names = []
    if sh_el is not None:
        rest_names = [f"f_rest_{i}" for i in range(len(sh_el.properties))]
        if sh_el.property_names() != rest_names or len(rest_names) not in (0, 9, 24, 45) or sh_el.count != vertex.count:
            raise SceneFileError(path, f"an 'sh' element with {vertex.count} rows of f_rest_0..M-1 (M = 0, 9, 24 or 45)",
                                 f"{sh_el.count} rows of {sh_el.property_names()[:6]}...")
        if any(p.type != "u1" for p in sh_el.properties):
            raise SceneFileError(path, "uchar SH coefficients", f"types {sorted({p.type for p in sh_el.properties})}")
    offsets = {element.name: check_binary_payload(path, header, element.name) for element in header.elements}
    n, k = vertex.count, len(rest_names) // 3 + 1
    limits.check_splats(path, n, round(k ** 0.5) - 1)  # ~16 bytes per splat on disk, up to 236 decoded
    means = np.empty((n, 3), np.float32)
    quats = np.empty((n, 4), np.float32)
    scales = np.empty((n, 3), np.float32)
    opacities = np.empty(n, np.float32)
    sh = np.empty((n, k, 3), np.float32)
    with open_regular(path, "a compressed PLY file") as handle:
        handle.seek(offsets["chunk"])
        chunks = np.fromfile(handle, dtype=chunk.dtype("<"), count=chunk.count)  # ~1/4 byte per splat per bound
        has_color_bounds = set(_COLOR_BOUNDS) <= set(chunk_names)
        vertex_dtype = vertex.dtype("<")
        for start in range(0, n, DECODE_BLOCK):
            stop = min(n, start + DECODE_BLOCK)
            handle.seek(offsets["vertex"] + start * vertex_dtype.itemsize)
            packed = np.fromfile(handle, dtype=vertex_dtype, count=stop - start)
            rest = None
            if rest_names:
                handle.seek(offsets["sh"] + start * len(rest_names))
                rest = np.fromfile(handle, dtype=np.uint8, count=(stop - start) * len(rest_names))
            if len(packed) != stop - start or (rest is not None and len(rest) != (stop - start) * len(rest_names)):
                raise SceneFileError(path, f"{n} splat rows", "a file that shrank while being read")
            s = slice(start, stop)
            _decode_block(chunks[start // CHUNK_SIZE: -(-stop // CHUNK_SIZE)], packed, rest, has_color_bounds,
                          means[s], quats[s], scales[s], opacities[s], sh[s])
    gaussians = Gaussians(
        means=torch.from_numpy(means),
        quats=torch.from_numpy(quats),
        scales=torch.from_numpy(scales),
        opacities=torch.from_numpy(opacities),
        sh=torch.from_numpy(sh),
    )
    return reject_or_drop_invalid(gaussians, path, drop_invalid)


def _decode_block(chunks: np.ndarray, packed: np.ndarray, rest: np.ndarray | None, has_color_bounds: bool,
                  means: np.ndarray, quats: np.ndarray, scales: np.ndarray, opacities: np.ndarray,
                  sh: np.ndarray) -> None:
    """Decode one block of splats (starting on a chunk boundary) into the output slices, in place.

    Temporaries are block-sized, so a load's peak memory is the output plus
    a few MiB (the whole-file decode peaked at ~17x the file size).
    """
    m = len(packed)
    chunk_of = np.arange(m) // CHUNK_SIZE  # [m] chunk index within this block

    def bounds(names: list[str]) -> np.ndarray:  # [m, 3]
        return np.stack([chunks[name].astype(np.float32) for name in names], axis=1)[chunk_of]

    with np.errstate(over="ignore", invalid="ignore"):
        means[:] = _lerp(bounds(_BOUNDS[0:3]), bounds(_BOUNDS[3:6]), _unpack_111011(packed["packed_position"]))
        scales[:] = np.exp(_lerp(bounds(_BOUNDS[6:9]), bounds(_BOUNDS[9:12]), _unpack_111011(packed["packed_scale"])))
        color = packed["packed_color"]
        rgb = np.stack([_unorm(color, 24, 8), _unorm(color, 16, 8), _unorm(color, 8, 8)], axis=1)
        if has_color_bounds:
            rgb = _lerp(bounds(_COLOR_BOUNDS[0:3]), bounds(_COLOR_BOUNDS[3:6]), rgb)
        sh[:, 0] = (rgb - 0.5) / SH_C0
        opacities[:] = _unorm(color, 0, 8)
        quats[:] = _unpack_rotation(packed["packed_rotation"])
        if rest is not None:
            q = rest.reshape(m, -1).astype(np.float32)
            unit = np.where(q == 0, 0.0, np.where(q == 255, 1.0, (q + 0.5) / 256)).astype(np.float32)
            sh[:, 1:] = ((unit - 0.5) * 8).reshape(m, 3, -1).transpose(0, 2, 1)


# ----------------------------------------------------------------- writing
def _part1by2(v: np.ndarray) -> np.ndarray:
    """Spread the low 10 bits of ``v`` so two zero bits follow each (Morton interleave)."""
    v = v.astype(np.uint32) & 0x3FF
    v = (v | (v << 16)) & 0xFF0000FF
    v = (v | (v << 8)) & 0x0300F00F
    v = (v | (v << 4)) & 0x030C30C3
    v = (v | (v << 2)) & 0x09249249
    return v


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices sorting ``means [N, 3]`` along a 10-bit-per-axis Morton curve over their bounding box."""
    if len(means) == 0:
        return np.zeros(0, np.int64)
    lo, hi = means.min(axis=0), means.max(axis=0)
    extent = np.where(hi > lo, hi - lo, 1.0)
    cells = np.clip(((means - lo) / extent * 1024).astype(np.int64), 0, 1023)
    code = (_part1by2(cells[:, 2]) << 2) | (_part1by2(cells[:, 1]) << 1) | _part1by2(cells[:, 0])
    return np.argsort(code, kind="stable")


def _pack_unorm(t: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(t * top + 0.5), 0, top).astype(np.uint32)


def _chunk_normalize(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-chunk min/max of ``values [N, 3]`` and the values mapped to [0, 1] within them."""
    chunks = -(-n // CHUNK_SIZE)
    padded = np.concatenate([values, np.repeat(values[-1:], chunks * CHUNK_SIZE - n, axis=0)])  # edge-pad
    blocks = padded.reshape(chunks, CHUNK_SIZE, 3)
    lo, hi = blocks.min(axis=1), blocks.max(axis=1)  # [C, 3]
    extent = np.where(hi > lo, hi - lo, 1.0)
    t = ((blocks - lo[:, None]) / extent[:, None]).reshape(-1, 3)[:n]
    return lo.astype(np.float32), hi.astype(np.float32), t


def _pack_rotation(quats: np.ndarray) -> np.ndarray:  # [N, 4] -> [N] uint32
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    q = quats / np.where(norms > 0, norms, 1.0)
    rows = np.arange(len(q))
    which = np.abs(q).argmax(axis=1)
    q = q * np.where(q[rows, which] < 0, -1.0, 1.0)[:, None]
    others = q[rows[:, None], _OTHER_COMPONENTS[which]] / math.sqrt(2.0) + 0.5
    packed = _pack_unorm(others, 10)
    return (which.astype(np.uint32) << 30) | (packed[:, 0] << 20) | (packed[:, 1] << 10) | packed[:, 2]


def _pack_111011(t: np.ndarray) -> np.ndarray:
    return (_pack_unorm(t[:, 0], 11) << 21) | (_pack_unorm(t[:, 1], 10) << 11) | _pack_unorm(t[:, 2], 11)


def write(gaussians: Gaussians, path: str | Path, *, sh_degree: int | None = None, overwrite: bool = True) -> None:
    """Write a SuperSplat compressed PLY atomically (splats in Morton order; extras are not stored)."""
    path = Path(path)
    if not isinstance(gaussians, Gaussians):
        raise SceneFileError(path, "a static Gaussians scene for a compressed PLY", f"a {type(gaussians).__name__}")
    if sh_degree is not None:
        gaussians = gaussians.with_sh_degree(sh_degree)
    n = len(gaussians)
    k = gaussians.sh.shape[1]
    numpy = lambda t: t.detach().cpu().to(torch.float64).numpy()  # noqa: E731
    order = morton_order(numpy(gaussians.means))
    means, quats = numpy(gaussians.means)[order], numpy(gaussians.quats)[order]
    sh = numpy(gaussians.sh)[order]
    with np.errstate(divide="ignore"):
        log_scales = np.clip(np.log(numpy(gaussians.scales)[order]), -_LOG_SCALE_LIMIT, _LOG_SCALE_LIMIT)
    opacities = np.clip(numpy(gaussians.opacities)[order], 0.0, 1.0)
    rgb = 0.5 + SH_C0 * sh[:, 0]
    chunk_rows = np.zeros((0, 18), np.float32)
    vertex_rows = np.zeros((0, 4), np.uint32)
    if n:
        pos_lo, pos_hi, pos_t = _chunk_normalize(means, n)
        scale_lo, scale_hi, scale_t = _chunk_normalize(log_scales, n)
        rgb_lo, rgb_hi, rgb_t = _chunk_normalize(rgb, n)
        chunk_rows = np.concatenate([pos_lo, pos_hi, scale_lo, scale_hi, rgb_lo, rgb_hi], axis=1)
        color = ((_pack_unorm(rgb_t[:, 0], 8) << 24) | (_pack_unorm(rgb_t[:, 1], 8) << 16)
                 | (_pack_unorm(rgb_t[:, 2], 8) << 8) | _pack_unorm(opacities, 8))
        vertex_rows = np.stack([_pack_111011(pos_t), _pack_rotation(quats), _pack_111011(scale_t), color], axis=1)
    elements = [("chunk", len(chunk_rows), [(name, "f4") for name in _BOUNDS + _COLOR_BOUNDS]),
                ("vertex", n, [(name, "u4") for name in _PACKED])]
    payload = [chunk_rows.astype("<f4"), vertex_rows.astype("<u4")]
    if k > 1:
        rest = sh[:, 1:].transpose(0, 2, 1).reshape(n, 3 * (k - 1))  # channel-major f_rest order (n may be 0)
        payload.append(np.clip(np.trunc((rest / 8 + 0.5) * 256), 0, 255).astype(np.uint8))
        elements.append(("sh", n, [(f"f_rest_{i}", "u1") for i in range(3 * (k - 1))]))
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as handle:
            handle.write(format_header(elements, comments=["written by lyra-studio (SuperSplat compressed layout)"]))
            for array in payload:
                handle.write(np.ascontiguousarray(array).tobytes())
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None

"""Niantic SPZ (``.spz``): versions 2 to 4 read, version 4 written.

Layout (nianticlabs/spz README; version 4 as the reference library writes it):

* v2/v3: the whole file is one gzip stream: a 16-byte header
  ``<u32 magic 0x5053474e ('NGSP'), u32 version, u32 count, u8 sh_degree,
  u8 fractional_bits, u8 flags, u8 reserved>`` then the attribute arrays.
* v4: a plain 32-byte header ``<magic, version, count, u8 sh_degree,
  u8 fractional_bits, u8 flags, u8 stream_count, u32 toc_offset, 12 reserved>``,
  at ``toc_offset`` one ``<u64 compressed, u64 uncompressed>`` pair per stream,
  then the streams, each its own zstd frame: six attribute arrays, five at
  SH degree 0 (no SH stream). Streams past those (extensions) are skipped.

Attribute arrays, in this order: positions (3 x 24-bit signed fixed point,
``fractional_bits`` fraction bits), alphas (``u8 = opacity * 255``), colours
(``u8 = f_dc * 0.15 * 255 + 127.5``), scales (``u8 = (log s + 10) * 16``),
rotations (v2: x, y, z as ``u8 = q * 127.5 + 127.5`` with w >= 0; v3+: one
u32 "smallest three": 2 bits for the index of the largest of x, y, z, w, then
three 10-bit fields, 9 bits of ``|q_i| / sqrt(1/2) * 511`` plus a sign bit),
SH rest coefficients (``u8 = x * 128 + 128``, coefficient-major with the
colour channel fastest, quantised to 5 bits for band 1 and 4 bits above).

SPZ stores right-up-back (RUB) coordinates; PLY scenes (and ours) are
right-down-front (RDF), so reading and writing flip y and z, the quaternion's
y and z, and the SH coefficients odd in y and z (what @adobe/spz and
splat-transform do).

Why not a library: ``gaussforge`` 0.6 writes SPZ without the RUB flip (its
files disagree with splat-transform by a y/z mirror) and prints a line to
stdout from C++ on every read, which breaks our JSON-only benchmark output;
``gsply`` needs numba. This module is numpy plus the stdlib's zlib and the
``zstandard`` package, and it bounds every allocation by the header before
decompressing (lying headers raise SceneFileError, never allocate gigabytes).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import zstandard

from lyra import limits
from lyra.errors import SceneFileError
from lyra.fileio import atomic_write, open_regular
from lyra.scene.frames import HALF_TURN_X_SH_SIGNS
from lyra.scene.gaussians import Gaussians, normalize_quats
from lyra.scene.sh import num_sh_coeffs

MAGIC = 0x5053474E
WRITE_VERSION = 4
HEADER_V3 = struct.Struct("<IIIBBBB")  # 16 bytes, inside the gzip stream
HEADER_V4 = struct.Struct("<IIIBBBBI12x")  # 32 bytes, plain
TOC_ENTRY = struct.Struct("<QQ")
MAX_SPLATS = 1 << 27  # 134M splats; a header claiming more is corrupt (and would not fit in memory)
COLOR_SCALE = 0.15
FRACTIONAL_BITS = 12
SH1_BITS, SH_REST_BITS = 5, 4
SQRT_HALF = float(np.sqrt(0.5))
_RUB_SH_SIGNS = np.array(HALF_TURN_X_SH_SIGNS, np.float32)  # [15] signs of the SH rest under (x, y, z) -> (x, -y, -z)


def stream_sizes(count: int, sh_degree: int, version: int) -> list[int]:
    """Bytes of positions, alphas, colours, scales, rotations, SH for ``count`` splats."""
    rot = 3 if version == 2 else 4
    return [9 * count, count, 3 * count, 3 * count, rot * count, 3 * (num_sh_coeffs(sh_degree) - 1) * count]


# ---------------------------------------------------------------------------------------------- read
def _check_header(path: Path, magic: int, version: int, count: int, sh_degree: int) -> None:
    if magic != MAGIC:
        raise SceneFileError(path, "an SPZ file (magic 'NGSP')", f"magic {magic:#x}")
    if version not in (2, 3, 4):
        raise SceneFileError(path, "SPZ version 2, 3 or 4", f"version {version}")
    if sh_degree > 3:
        raise SceneFileError(path, "SH degree 0 to 3", f"SH degree {sh_degree}")
    if count > MAX_SPLATS:
        raise SceneFileError(path, f"at most {MAX_SPLATS} splats", f"a header claiming {count}")
    limits.check_splats(path, count, sh_degree)  # the decode budget, before any stream is inflated


def _check_ratio(path: Path, sizes: list[int], compressed: int) -> None:
    """Real splat data compresses a few times; a header whose streams expand past the bomb ratio is refused."""
    limits.check_ratio(path, sum(sizes), compressed, "SPZ splat data")


def _read_gzip(path: Path, raw: bytes) -> tuple[tuple, list[bytes]]:
    inflater = zlib.decompressobj(wbits=31)
    try:
        head = inflater.decompress(raw, HEADER_V3.size)
        if len(head) < HEADER_V3.size:
            raise SceneFileError(path, "a 16-byte SPZ header inside the gzip stream", f"{len(head)} bytes")
        magic, version, count, sh_degree, fbits, flags, _ = HEADER_V3.unpack(head)
        _check_header(path, magic, version, count, sh_degree)
        if version == 4:
            raise SceneFileError(path, "an SPZ v4 file with a plain header", "a gzip-wrapped v4 header")
        sizes = stream_sizes(count, sh_degree, version)
        _check_ratio(path, sizes, len(raw))
        body = inflater.decompress(inflater.unconsumed_tail, sum(sizes))
        if len(body) == sum(sizes) and (inflater.decompress(inflater.unconsumed_tail, 1) or not inflater.eof):
            raise SceneFileError(path, "a gzip stream that ends after the splat data", "more data or a cut-off stream")
    except zlib.error as exc:
        raise SceneFileError(path, "an intact gzip stream", f"a zlib error ({type(exc).__name__})") from None
    if len(body) != sum(sizes):
        raise SceneFileError(path, f"{sum(sizes)} bytes of splat data for {count} splats", f"{len(body)} bytes (truncated?)")
    streams, offset = [], 0
    for size in sizes:
        streams.append(body[offset:offset + size])
        offset += size
    return (version, count, sh_degree, fbits, flags), streams


def _read_v4(path: Path, raw: bytes) -> tuple[tuple, list]:
    if len(raw) < HEADER_V4.size:
        raise SceneFileError(path, f"a {HEADER_V4.size}-byte SPZ v4 header", f"{len(raw)} bytes")
    magic, version, count, sh_degree, fbits, flags, n_streams, toc = HEADER_V4.unpack_from(raw)
    _check_header(path, magic, version, count, sh_degree)
    if version != 4:
        raise SceneFileError(path, "a plain header only for SPZ version 4", f"version {version}")
    sizes = stream_sizes(count, sh_degree, version)
    if sh_degree == 0:
        sizes = sizes[:5]  # no SH stream at degree 0
    if n_streams < len(sizes) or toc < HEADER_V4.size or toc + n_streams * TOC_ENTRY.size > len(raw):
        raise SceneFileError(path, f"a table of at least {len(sizes)} streams inside the file", f"{n_streams} streams at offset {toc}")
    _check_ratio(path, sizes, len(raw))
    entries = [TOC_ENTRY.unpack_from(raw, toc + i * TOC_ENTRY.size) for i in range(n_streams)]
    offset = toc + n_streams * TOC_ENTRY.size
    frames = []
    for index, (compressed, uncompressed) in enumerate(entries[: len(sizes)]):
        if uncompressed != sizes[index] or offset + compressed > len(raw):
            raise SceneFileError(path, f"stream {index} of {sizes[index]} bytes inside the file",
                                 f"{uncompressed} bytes from {compressed} at offset {offset} of {len(raw)}")
        frames.append((index, offset, compressed, uncompressed))
        offset += compressed
    view = memoryview(raw)

    def inflate(frame: tuple[int, int, int, int]) -> np.ndarray:
        index, offset, compressed, uncompressed = frame
        # Into a buffer of the size the table promised (checked above), whatever the frame header
        # claims; readinto with 1 MiB reads measured ~2.5x faster than read() into a new bytes.
        data = np.empty(uncompressed, np.uint8)
        target, filled = memoryview(data), 0
        try:
            with zstandard.ZstdDecompressor().stream_reader(view[offset:offset + compressed], read_size=1 << 20) as reader:
                while filled < uncompressed and (got := reader.readinto(target[filled:])):
                    filled += got
                extra = reader.read(1)
        except zstandard.ZstdError as exc:
            raise SceneFileError(path, f"an intact zstd stream {index}", str(exc)) from None
        if filled != uncompressed or extra:
            raise SceneFileError(path, f"{uncompressed} bytes in stream {index}", f"{filled + len(extra)} bytes or more")
        return data

    # One frame per thread, largest first: zstd releases the GIL, so the SH stream (most of the bytes)
    # decompresses while the others do.
    order = sorted(frames, key=lambda frame: -frame[3])
    with ThreadPoolExecutor(min(len(order), os.cpu_count() or 1)) as pool:
        decoded = dict(zip([frame[0] for frame in order], pool.map(inflate, order), strict=True))
    streams = [decoded[index] for index in range(len(frames))]
    return (version, count, sh_degree, fbits, flags), streams + [b""] * (6 - len(streams))


def _decode_positions(data: bytes, count: int, fbits: int) -> np.ndarray:
    """Means ``[N, 3]`` (file axes) from 24-bit little-endian fixed point.

    Each value is read as an int32 through a view with a 3-byte stride (the
    buffer is padded by one byte for the last one); shifting left then
    arithmetically right by 8 drops the neighbour's byte and sign-extends.
    """
    padded = np.zeros(9 * count + 1, np.uint8)
    padded[:-1] = np.frombuffer(data, np.uint8)
    words = np.ndarray((3 * count,), "<i4", padded, 0, (3,))
    fixed = np.left_shift(words, 8)
    fixed >>= 8
    return np.multiply(fixed, np.float32(1.0 / (1 << fbits)), dtype=np.float32).reshape(count, 3)


def _byte_table(transform) -> np.ndarray:
    """``transform`` of every byte value as float32 ``[256]``: a per-byte map applied by lookup."""
    return transform(np.arange(256, dtype=np.float32)).astype(np.float32)


def _smallest_three_table() -> np.ndarray:
    """Float32 ``[1024]``: a 10-bit field (9-bit magnitude, sign bit) -> its quaternion component."""
    field = np.arange(1024)
    value = (field & 511).astype(np.float32) * np.float32(SQRT_HALF / 511.0)
    return np.where(field & 512, -value, value).astype(np.float32)


_SMALLEST_THREE = _smallest_three_table()


def _decode_rotations(data: bytes, count: int, version: int) -> np.ndarray:
    """Quaternions ``[N, 4]`` in (x, y, z, w) order."""
    if version == 2:
        xyz = np.frombuffer(data, np.uint8).reshape(count, 3).astype(np.float32) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz * xyz).sum(1, keepdims=True)))
        return np.concatenate([xyz, w], axis=1)
    packed = np.frombuffer(data, "<u4")
    largest = packed >> 30
    # The three stored components, in ascending component order skipping the largest: the first in
    # the highest bits. Component i is then field i below the largest, field i - 1 above it.
    fields = [_SMALLEST_THREE[(packed >> shift) & 1023] for shift in (20, 10, 0)]
    missing = fields[0] * fields[0]
    missing += fields[1] * fields[1]
    missing += fields[2] * fields[2]
    np.subtract(np.float32(1.0), missing, out=missing)
    np.maximum(missing, 0.0, out=missing)
    np.sqrt(missing, out=missing)
    q = np.empty((count, 4), np.float32)
    for i in range(4):
        stored = fields[i] if i == 0 else fields[i - 1] if i == 3 else np.where(largest > i, fields[i], fields[i - 1])
        q[:, i] = np.where(largest == i, missing, stored)
    return q


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load an ``.spz`` file (v2, v3 gzip or v4 zstd) as activated Gaussians in RDF. Raises SceneFileError.

    ``drop_invalid`` is accepted like every reader's; SPZ cannot encode invalid splats.
    """
    path = Path(path)
    with open_regular(path, "an .spz file") as handle:  # a FIFO or device is refused before it can block
        raw = handle.read()
    if raw[:4] == struct.pack("<I", MAGIC):
        (version, count, degree, fbits, _flags), streams = _read_v4(path, raw)
    elif raw[:2] == b"\x1f\x8b":
        (version, count, degree, fbits, _flags), streams = _read_gzip(path, raw)
    else:
        raise SceneFileError(path, "an SPZ file (gzip stream or 'NGSP' header)", f"a file of {len(raw)} bytes of another kind")
    if fbits > 23:
        raise SceneFileError(path, "at most 23 fractional bits for 24-bit positions", f"{fbits}")
    positions, alphas, colors, scales, rotations, sh_rest = streams
    # Per-byte maps go through 256-entry tables (the same float32 arithmetic, done once per byte value).
    means = _decode_positions(positions, count, fbits)
    means[:, 1:] *= -1  # RUB -> RDF: mirror y and z (a half turn about x)
    opacities = _byte_table(lambda b: b / 255.0)[np.frombuffer(alphas, np.uint8)]
    k = num_sh_coeffs(degree)
    sh = np.empty((count, k, 3), np.float32)
    sh[:, 0] = _byte_table(lambda b: (b / 255.0 - 0.5) / COLOR_SCALE)[np.frombuffer(colors, np.uint8).reshape(count, 3)]
    if k > 1:
        _decode_sh_rest(np.frombuffer(sh_rest, np.uint8).reshape(count, 3 * (k - 1)), sh.reshape(count, 3 * k)[:, 3:])
    scales = _byte_table(lambda b: np.exp(b / 16.0 - 10.0))[np.frombuffer(scales, np.uint8).reshape(count, 3)]
    xyzw = _decode_rotations(rotations, count, version)
    wxyz = np.empty((count, 4), np.float32)
    wxyz[:, 0], wxyz[:, 1], wxyz[:, 2], wxyz[:, 3] = xyzw[:, 3], xyzw[:, 0], -xyzw[:, 1], -xyzw[:, 2]
    # Unit length, column by column in place. The norm is never below ~1: the rebuilt component
    # completes it to 1, or is 0 because the stored ones already overshoot 1.
    norm = wxyz[:, 0] * wxyz[:, 0]
    for i in range(1, 4):
        norm += wxyz[:, i] * wxyz[:, i]
    np.sqrt(norm, out=norm)
    for i in range(4):
        wxyz[:, i] /= norm
    # Every value is decoded from bytes through bounded maps, and every decoded quaternion has unit
    # norm, so there is nothing for the NaN/Inf/zero-quaternion check to find (it was 90% of a load).
    return Gaussians(
        means=torch.from_numpy(means),
        quats=torch.from_numpy(wxyz),
        scales=torch.from_numpy(scales),
        opacities=torch.from_numpy(opacities),
        sh=torch.from_numpy(sh),
    )


SH_ROWS_PER_CHUNK = 4096  # ~0.7 MB of float rows at SH 3: cache-resident while scaled


def _decode_sh_rest(data: np.ndarray, out: np.ndarray) -> None:
    """SH rest bytes ``[N, 3 (K-1)]`` -> ``out`` (float32 rows, may be strided), RUB -> RDF signs applied.

    ``(b - 128) / 128 * sign`` as ``b * (sign / 128) - sign`` (exact in float32:
    8 significant bits), chunk by chunk so the second pass runs in cache, with
    the coefficient axis innermost (a 3-wide inner axis makes numpy ~3x slower).
    """
    signs = np.repeat(_RUB_SH_SIGNS[: data.shape[1] // 3], 3)
    scale = signs / np.float32(128.0)
    for start in range(0, len(data), SH_ROWS_PER_CHUNK):
        rows = out[start:start + SH_ROWS_PER_CHUNK]
        np.multiply(data[start:start + SH_ROWS_PER_CHUNK], scale, out=rows)
        rows -= signs


# --------------------------------------------------------------------------------------------- write
def _quantize_sh(values: np.ndarray, bits: int) -> np.ndarray:
    q = np.clip(np.rint(values.astype(np.float32) * np.float32(128.0)), -128, 127).astype(np.int16) + 128
    bucket = 1 << (8 - bits)
    return np.minimum((q + bucket // 2) // bucket * bucket, 255).astype(np.uint8)


def _encode_rotations(wxyz: np.ndarray) -> np.ndarray:
    """Smallest-three u32 per splat from unit quaternions ``[N, 4]`` (w, x, y, z)."""
    q = wxyz[:, [1, 2, 3, 0]].astype(np.float64)  # x, y, z, w
    largest = np.abs(q).argmax(1)
    q = np.where(q[np.arange(len(q)), largest][:, None] < 0, -q, q)
    packed = np.zeros(len(q), np.uint64)
    for i in range(4):
        keep = largest != i
        mag = np.minimum(np.rint(np.abs(q[:, i]) / SQRT_HALF * 511.0), 511).astype(np.uint64)
        field = mag | (q[:, i] < 0).astype(np.uint64) << np.uint64(9)
        packed = np.where(keep, (packed << np.uint64(10)) | field, packed)
    packed |= largest.astype(np.uint64) << np.uint64(30)
    return packed.astype("<u4")


def encode(gaussians: Gaussians, sh_degree: int | None = None) -> bytes:
    """The bytes of a version-4 ``.spz`` file for ``gaussians`` (RDF in memory, RUB on disk)."""
    g = gaussians.to("cpu", torch.float32)
    degree = min(g.sh_degree if sh_degree is None else sh_degree, 3)
    g = g.with_sh_degree(degree)
    n = len(g)
    means = g.means.numpy().astype(np.float64) * np.array([1.0, -1.0, -1.0])
    extent = float(np.abs(means).max()) if n else 0.0
    # 12 fraction bits unless the scene reaches past 2^11 units; fewer then, so nothing wraps.
    fbits = FRACTIONAL_BITS
    while fbits > 0 and extent * (1 << fbits) >= (1 << 23) - 1:
        fbits -= 1
    fixed = np.clip(np.rint(means * (1 << fbits)), -(1 << 23), (1 << 23) - 1).astype(np.int32).reshape(-1)
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, (fixed >> 16) & 0xFF], axis=1).astype(np.uint8)
    alphas = np.clip(np.rint(g.opacities.numpy() * 255.0), 0, 255).astype(np.uint8)
    colors = np.clip(np.rint(g.sh[:, 0].numpy() * (COLOR_SCALE * 255.0) + 127.5), 0, 255).astype(np.uint8)
    scales = np.clip(np.rint((np.log(np.maximum(g.scales.numpy(), 1e-30)) + 10.0) * 16.0), 0, 255).astype(np.uint8)
    wxyz = normalize_quats(g.quats).numpy() * np.array([1.0, 1.0, -1.0, -1.0], np.float32)
    rotations = _encode_rotations(wxyz)
    rest = g.sh[:, 1:].numpy() * _RUB_SH_SIGNS[: num_sh_coeffs(degree) - 1, None]  # [N, K-1, 3]
    sh_bytes = np.empty(rest.shape, np.uint8)
    sh_bytes[:, :3] = _quantize_sh(rest[:, :3], SH1_BITS)
    sh_bytes[:, 3:] = _quantize_sh(rest[:, 3:], SH_REST_BITS)
    arrays = (positions, alphas, colors, scales, rotations) + ((sh_bytes,) if degree else ())
    streams = [a.tobytes() for a in arrays]  # no SH stream at degree 0, as the reference writer does
    compressor = zstandard.ZstdCompressor(level=3, threads=-1)
    frames = [compressor.compress(s) for s in streams]
    header = HEADER_V4.pack(MAGIC, WRITE_VERSION, n, degree, fbits, 0, len(frames), HEADER_V4.size)
    toc = b"".join(TOC_ENTRY.pack(len(f), len(s)) for f, s in zip(frames, streams, strict=True))
    return header + toc + b"".join(frames)


def write(gaussians: Gaussians, path: str | Path, *, overwrite: bool = True, sh_degree: int | None = None) -> None:
    """Write a version-4 ``.spz`` atomically (SH degree capped at 3; lossy, see module docstring)."""
    path = Path(path)
    if not isinstance(gaussians, Gaussians):
        raise SceneFileError(path, "a static Gaussians scene for an .spz file", f"a {type(gaussians).__name__}")
    data = encode(gaussians, sh_degree)
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as handle:
            handle.write(data)
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None

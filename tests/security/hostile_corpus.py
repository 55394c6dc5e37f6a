"""Hostile input files, generated at test time: tiny files that declare gigabytes (issue 20, section 3.1).

Each generator writes one file into a folder and returns its path; :data:`CASES`
maps a case name to ``(generator, reader)`` where the reader is the front door
an outside check calls: ``scene`` (``lyra.scene.load``), ``depth``
(``lyra.pipeline.depth.read_depth_file``), ``input`` (``lyra.pipeline.inputs.read_input``)
or ``depth_zip`` (``lyra.pipeline.sdg.read_depth_zip``). Every file here must be
refused with a LyraError, fast, under a 5 GiB address-space limit.

Nothing large is ever held in memory while generating: big payloads are zeros
fed to a streaming compressor in chunks.
"""

from __future__ import annotations

import bz2
import functools
import json
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHUNK = 16 << 20


def _compress_zeros(compressor, total: int) -> bytes:
    """``total`` zero bytes through a streaming compressor (``compress``/``flush``), 16 MiB at a time."""
    zeros = bytes(CHUNK)
    out = []
    left = total
    while left > 0:
        out.append(compressor.compress(zeros[: min(left, CHUNK)]))
        left -= min(left, CHUNK)
    out.append(compressor.flush())
    return b"".join(out)


def _crc_of_zeros(total: int) -> int:
    zeros, crc, left = bytes(CHUNK), 0, total
    while left > 0:
        crc = zlib.crc32(zeros[: min(left, CHUNK)], crc)
        left -= min(left, CHUNK)
    return crc


@functools.cache
def bzip2_of_zeros(total: int) -> bytes:
    return _compress_zeros(bz2.BZ2Compressor(1), total)


@functools.cache
def deflate_of_zeros(total: int) -> tuple[bytes, int]:
    """(raw deflate stream, CRC-32) of ``total`` zero bytes."""
    return _compress_zeros(zlib.compressobj(6, zlib.DEFLATED, -15), total), _crc_of_zeros(total)


def write_raw_zip(path: Path, members: list[tuple[str, int, bytes, int, int]]) -> Path:
    """A zip whose members are ``(name, method, raw compressed bytes, declared size, crc)``, written by hand
    so that the declared size can lie (zipfile always writes the truth)."""
    body, directory = bytearray(), bytearray()
    for name, method, raw, declared, crc in members:
        encoded = name.encode()
        offset = len(body)
        version = 46 if method == zipfile.ZIP_BZIP2 else 20
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", version, 0, method, 0, 0, crc, len(raw), declared, len(encoded), 0)
        body += encoded + raw
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", version, version, 0, method, 0, 0, crc, len(raw),
                                 declared, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(bytes(body) + bytes(directory) + end)
    return path


# ------------------------------------------------------------------------------------------------ cases
def mp4_black_frames(folder: Path) -> Path:
    """3000 black 1080p frames (~18 GB as RGB) in an MP4 of a few hundred KB."""
    import imageio_ffmpeg

    path = folder / "black.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=1920x1080:r=30:d=100", "-frames:v", "3000", "-c:v", "libx264",
                    "-preset", "ultrafast", "-tune", "stillimage", "-pix_fmt", "yuv420p", str(path)],
                   check=True, capture_output=True, timeout=600)
    return path


def _spz_v4(path: Path, count: int, sh_degree: int) -> Path:
    import zstandard

    from lyra.scene.formats import spz

    sizes = spz.stream_sizes(count, sh_degree, 4)[: 5 if sh_degree == 0 else 6]
    frames = [_compress_zeros(zstandard.ZstdCompressor(level=3).compressobj(), size) for size in sizes]
    header = spz.HEADER_V4.pack(spz.MAGIC, 4, count, sh_degree, 12, 0, len(frames), spz.HEADER_V4.size)
    toc = b"".join(spz.TOC_ENTRY.pack(len(f), s) for f, s in zip(frames, sizes, strict=True))
    path.write_bytes(header + toc + b"".join(frames))
    return path


def spz_8m_zero_splats(folder: Path) -> Path:
    """SPZ v4, 8M splats of SH degree 3, all zero bytes: ~17 KB on disk, ~1.9 GB decoded (4.8 GB at peak)."""
    return _spz_v4(folder / "zeros_8m.spz", 8_000_000, 3)


def spz_at_the_count_cap(folder: Path) -> Path:
    """SPZ v4 at the old 2^27-splat cap, SH degree 0 (a raw MemoryError before)."""
    return _spz_v4(folder / "zeros_cap.spz", 1 << 27, 0)


def sog_134m_pixels(folder: Path) -> Path:
    """A SOG bundle declaring 2^27 splats, its images one constant colour (a few KB)."""
    from PIL import Image

    count = 1 << 27
    side = 11600  # 134.6M pixels >= count, and WebP's 16383-pixel side limit holds
    buffer = folder / "constant.webp"
    Image.new("RGBA", (side, side), (7, 7, 7, 255)).save(buffer, "WEBP", lossless=True, method=0)
    image = buffer.read_bytes()
    meta = {"version": 2, "count": count,
            "means": {"mins": [0, 0, 0], "maxs": [1, 1, 1], "files": ["means_l.webp", "means_u.webp"]},
            "scales": {"codebook": [0.0] * 256, "files": ["scales.webp"]},
            "quats": {"files": ["quats.webp"]},
            "sh0": {"codebook": [0.0] * 256, "files": ["sh0.webp"]}}
    path = folder / "constant.sog"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("meta.json", json.dumps(meta))
        for name in ("means_l.webp", "means_u.webp", "scales.webp", "quats.webp", "sh0.webp"):
            bundle.writestr(name, image)
    return path


def zip_bzip2_member_lying(folder: Path) -> Path:
    """A zip of frames whose bzip2 member declares 1,000 bytes and expands to 256 MiB (~500 bytes on disk)."""
    raw = bzip2_of_zeros(256 << 20)
    return write_raw_zip(folder / "bzip2_bomb.zip", [("frame_00000.ply", zipfile.ZIP_BZIP2, raw, 1000, 0)])


def depth_zip_bzip2_member_lying(folder: Path) -> Path:
    """The same bomb as a ViPE/SDG depth zip (one 'EXR' member)."""
    raw = bzip2_of_zeros(256 << 20)
    return write_raw_zip(folder / "depth_bomb.zip", [("00000.exr", zipfile.ZIP_BZIP2, raw, 1000, 0)])


def sog_1gib_deflated_member(folder: Path) -> Path:
    """A .sog whose means image is a 1 GiB deflated member of ~1 MB (declared truthfully)."""
    meta = json.dumps({"version": 2, "count": 4, "means": {"mins": [0, 0, 0], "maxs": [1, 1, 1],
                                                           "files": ["means_l.webp", "means_u.webp"]},
                       "scales": {"codebook": [0.0], "files": ["scales.webp"]}, "quats": {"files": ["quats.webp"]},
                       "sh0": {"codebook": [0.0], "files": ["sh0.webp"]}}).encode()
    size = 1 << 30
    raw, crc = deflate_of_zeros(size)
    return write_raw_zip(folder / "deflated.sog", [
        ("meta.json", zipfile.ZIP_STORED, meta, len(meta), zlib.crc32(meta)),
        ("means_l.webp", zipfile.ZIP_DEFLATED, raw, size, crc),
    ])


def pt_deflated_member(folder: Path) -> Path:
    """A torch.save zip of a small Lyra tensor plus a 1 GiB deflated member (~1 MB on disk)."""
    import torch

    plain = folder / "plain.pt"
    torch.save(torch.zeros(1, 4, 14), plain)
    size = 1 << 30
    raw, crc = deflate_of_zeros(size)
    members = []
    with zipfile.ZipFile(plain) as source:
        for info in source.infolist():
            data = source.read(info)
            members.append((info.filename, zipfile.ZIP_STORED, data, len(data), zlib.crc32(data)))
    prefix = members[0][0].split("/")[0]
    members.append((f"{prefix}/data/1", zipfile.ZIP_DEFLATED, raw, size, crc))
    plain.unlink()
    return write_raw_zip(folder / "deflated.pt", members)


def png_12000(folder: Path) -> Path:
    """A constant 16-bit grey 12000 x 12000 PNG (144 megapixels), zlib level 9: a few hundred KB."""
    width = height = 12000
    row = b"\0" + b"\x03\xe8" * width  # filter 0, then 1000 (one metre) per pixel
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = folder / "huge.png"
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def npy_header_100000(folder: Path) -> Path:
    """A .npy whose header claims float32 [100000, 100000] (40 GB), followed by a few bytes."""
    path = folder / "huge.npy"
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)})
        handle.write(b"\0" * 64)
    return path


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "mp4_black_frames": (mp4_black_frames, "input"),
    "spz_8m_zero_splats": (spz_8m_zero_splats, "scene"),
    "spz_at_the_count_cap": (spz_at_the_count_cap, "scene"),
    "sog_134m_pixels": (sog_134m_pixels, "scene"),
    "zip_bzip2_member_lying": (zip_bzip2_member_lying, "scene"),
    "depth_zip_bzip2_scene": (depth_zip_bzip2_member_lying, "depth_zip"),
    "depth_zip_via_read_depth_file": (depth_zip_bzip2_member_lying, "depth"),
    "sog_1gib_deflated_member": (sog_1gib_deflated_member, "scene"),
    "pt_deflated_member": (pt_deflated_member, "scene"),
    "png_12000_depth": (png_12000, "depth"),
    "png_12000_input": (png_12000, "input"),
    "npy_header_100000": (npy_header_100000, "depth"),
}

# Run in a child process: ``python -c LOADER reader path``; prints "LyraError: <type>" or the failure.
LOADER = r"""
import resource, sys, time
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from lyra.errors import LyraError
reader, path = sys.argv[1], sys.argv[2]
if reader == "scene":
    from lyra.scene import load as read
elif reader == "depth":
    from lyra.pipeline.depth import read_depth_file as read
elif reader == "depth_zip":
    from lyra.pipeline.sdg import read_depth_zip as read
else:
    from lyra.pipeline.inputs import read_input as read
start = time.perf_counter()
try:
    result = read(path)
    from lyra.scene import GaussianSequence
    if isinstance(result, GaussianSequence):
        result.frames[0]  # a lazy sequence: read its first frame
except LyraError as exc:
    print(f"LyraError {type(exc).__name__} after {time.perf_counter() - start:.2f}s: {exc}")
    sys.exit(0)
print(f"no LyraError: loaded {type(result).__name__}")
sys.exit(3)
"""

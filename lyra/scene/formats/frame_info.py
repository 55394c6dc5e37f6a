"""Splat count and SH degree of a scene file from its header alone (what a lazy sequence opens with).

``frame_info(path, fmt)`` reads at most a header (PLY header, SPZ's first
bytes, SOG's meta.json); formats without a header (the Lyra tensor) are
loaded. Raises SceneFileError for a malformed header.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path

from lyra.bounded_zip import BoundedZip
from lyra.errors import SceneFileError
from lyra.fileio import open_regular
from lyra.scene.formats.ply_header import read_header


def _degree_from_rest(path: Path, rest: int) -> int:
    degree = round(math.sqrt(rest / 3 + 1)) - 1
    if 3 * ((degree + 1) ** 2 - 1) != rest:
        raise SceneFileError(path, "0, 9, 24 or 45 f_rest properties", f"{rest}")
    return degree


def _ply(path: Path) -> tuple[int, int]:
    header = read_header(path)
    vertex = header.element("vertex")
    if vertex is None:
        raise SceneFileError(path, "a PLY 'vertex' element", "none")
    sh = header.element("sh")
    names = (sh.property_names() if sh is not None else vertex.property_names())
    return vertex.count, _degree_from_rest(path, sum(1 for n in names if n.startswith("f_rest_")))


def _splat(path: Path) -> tuple[int, int]:
    return os.path.getsize(path) // 32, 0


def _spz(path: Path) -> tuple[int, int]:
    from lyra.scene.formats import spz

    with open_regular(path, "an .spz file") as handle:
        raw = handle.read(1 << 16)
    if raw[:4] == struct.pack("<I", spz.MAGIC):
        head = raw[: spz.HEADER_V3.size]
    else:
        try:
            head = zlib.decompressobj(wbits=31).decompress(raw, spz.HEADER_V3.size)
        except zlib.error as exc:
            raise SceneFileError(path, "an SPZ gzip stream", str(exc)) from None
    if len(head) < spz.HEADER_V3.size:
        raise SceneFileError(path, "an SPZ header", f"{len(head)} bytes")
    _, _, count, degree, _, _, _ = spz.HEADER_V3.unpack(head)
    return count, degree


def _sog(path: Path) -> tuple[int, int]:
    try:
        if path.is_dir() or path.name.lower() == "meta.json":
            meta_path = path / "meta.json" if path.is_dir() else path
            with open_regular(meta_path, "a SOG meta.json") as handle:
                text = handle.read(1 << 24)
        else:
            with BoundedZip(path, "a .sog bundle") as bundle:
                text = bundle.read("meta.json", 1 << 24)
        meta = json.loads(text)
        return int(meta["count"]), int((meta.get("shN") or {}).get("bands", 0))
    except SceneFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError, RecursionError, AttributeError) as exc:
        raise SceneFileError(path, "a SOG meta.json with a count", f"{type(exc).__name__}") from None


def _gltf(path: Path) -> tuple[int, int]:
    from lyra.scene.formats.gltf import glb_info

    return glb_info(path)


_READERS = {"ply": _ply, "ply-compressed": _ply, "splat": _splat, "spz": _spz, "sog": _sog, "gltf": _gltf}


def frame_info(path: str | os.PathLike, fmt: str) -> tuple[int, int]:
    """``(splat count, SH degree)`` of the ``fmt`` file at ``path``, from its header where it has one."""
    path = Path(path)
    reader = _READERS.get(fmt)
    if reader is not None:
        return reader(path)
    from lyra.scene.formats import load

    scene = load(path)
    return len(scene), scene.sh_degree

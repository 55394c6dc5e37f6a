"""Which format a path holds: by content first (names lie: Lyra's torch tensors end in .ply)."""

from __future__ import annotations

import stat
from pathlib import Path

from lyra.errors import SceneFileError
from lyra.fileio import require_file_or_folder
from lyra.scene.formats.ply_header import read_head

SPLAT_ROW_BYTES = 32
_SPZ_MAGIC = b"NGSP"
_GZIP_MAGIC = b"\x1f\x8b"
SOG_META = "meta.json"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_GLB_MAGIC = b"glTF"
_USD_MAGICS = (b"PXR-USDC", b"#usda ")  # crate (binary) and text layers


def detect_format(path: Path) -> str:
    """Format name (a key of ``FORMATS``) of an existing file or folder.

    Folders and ``.zip`` archives of frames are ``sequence`` (a folder holding
    a SOG ``meta.json`` and no sequence manifest is ``sog``); files are sniffed:
    ``ply\\n`` magic -> ``ply-compressed`` if the header has a ``chunk`` element,
    else ``ply``; ``NGSP`` magic, or gzip magic in a ``.spz`` file -> ``spz``;
    zip magic -> ``sog`` for a ``.sog`` name, ``sequence`` for ``.zip``, else
    ``lyra-tensor`` (torch.save output), as does pickle magic; ``glTF`` magic -> ``gltf``;
    ``PXR-USDC``/``#usda`` magic, or zip magic in a ``.usdz`` file -> ``usd``; a file named
    ``meta.json`` -> ``sog`` (unbundled); a ``.splat`` name with a size that is a
    multiple of 32 -> ``splat``. Raises SceneFileError naming what was found otherwise
    (FIFOs, devices and sockets are refused before they are opened).
    """
    path = Path(path)
    if stat.S_ISDIR(require_file_or_folder(path).st_mode):
        if (path / SOG_META).is_file() and not (path / "manifest.json").exists():
            return "sog"
        return "sequence"
    size, head = read_head(path)
    if size == 0:
        raise SceneFileError(path, "a scene file (PLY, compressed PLY, .splat, Lyra tensor)", "an empty file")
    if head.startswith(b"ply\n") or head.startswith(b"ply\r\n"):
        return "ply-compressed" if _header_has_chunk_element(head) else "ply"
    if head.startswith(_SPZ_MAGIC) or (head.startswith(_GZIP_MAGIC) and path.suffix.lower() == ".spz"):
        return "spz"
    if head.startswith(_GLB_MAGIC):
        return "gltf"
    if head.startswith(_USD_MAGICS):
        return "usd"
    if head.startswith(_ZIP_MAGIC) or head.startswith(_EMPTY_ZIP_MAGIC):
        # torch.save writes a zip archive; so do a zip of PLY frames, a SOG bundle and a USDZ package. The name decides.
        suffix = path.suffix.lower()
        named = {".zip": "sequence", ".sog": "sog", ".usdz": "usd"}
        return named.get(suffix, "lyra-tensor")
    if path.name.lower() == SOG_META:
        return "sog"
    if head[:1] == b"\x80":
        return "lyra-tensor"  # legacy (non-zip) torch.save pickle
    if path.suffix.lower() == ".splat":
        if size % SPLAT_ROW_BYTES == 0:
            return "splat"
        raise SceneFileError(path, f"a .splat file whose size is a multiple of {SPLAT_ROW_BYTES} bytes", f"{size} bytes")
    raise SceneFileError(
        path,
        "a PLY ('ply' magic), a torch-saved Lyra tensor (zip/pickle magic), a .splat file or a folder of frames",
        f"a file of {size} bytes of another kind",  # never echo content: messages reach clients
    )


def _header_has_chunk_element(head: bytes) -> bool:
    end = head.find(b"end_header")
    text = head[: end if end >= 0 else len(head)]
    return any(line.split()[:2] == [b"element", b"chunk"] for line in text.splitlines())


def format_from_name(path: Path) -> str:
    """Format a save to ``path`` means, by the longest matching suffix of ``FORMAT_TABLE``; no suffix -> sequence."""
    from lyra.scene.formats import FORMAT_TABLE

    name = Path(path).name.lower()
    if name == SOG_META:
        return "sog"  # an unbundled SOG: images beside meta.json
    endings = sorted(((ending, fmt) for fmt, spec in FORMAT_TABLE.items() for ending in spec.endings()), key=lambda e: -len(e[0]))
    for suffix, fmt in endings:
        if name.endswith(suffix):
            return fmt
    if Path(name).suffix == "":
        return "sequence"
    names = ", ".join(suffix for suffix, _ in endings)
    raise SceneFileError(path, f"a name ending in {names} or no suffix (a sequence folder)",
                         f"suffix {Path(name).suffix!r}; pass format= explicitly")

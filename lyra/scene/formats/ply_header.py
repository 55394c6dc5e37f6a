"""PLY header parsing shared by the standard and the compressed PLY readers.

The header is parsed by hand (it is a few lines of text) so that the payload
can then be read with one ``np.fromfile``/``readinto`` into a structured or
homogeneous array. Everything a hostile header can claim (element counts,
property types) is checked against the real file size *before* any payload
buffer is allocated, so a lying header costs nothing.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from lyra.errors import SceneFileError
from lyra.fileio import open_regular

MAX_HEADER_BYTES = 1 << 20  # a real header is < 10 kB; more means the file is not a PLY
PLY_MAGIC = b"ply\n"

# PLY scalar type names (both spellings of the spec) -> numpy kind+size.
PLY_TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
# numpy kind+size -> PLY type name used when writing.
PLY_NAMES: dict[str, str] = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort",
                             "i4": "int", "u4": "uint", "f4": "float", "f8": "double"}
_ENDIAN = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": "<"}


@dataclasses.dataclass
class PlyProperty:
    name: str
    type: str  # numpy kind+size, e.g. "f4"
    list_count_type: str | None = None  # set for "property list ..."


@dataclasses.dataclass
class PlyElement:
    name: str
    count: int
    properties: list[PlyProperty]

    @property
    def has_lists(self) -> bool:
        return any(p.list_count_type is not None for p in self.properties)

    def property_names(self) -> list[str]:
        return [p.name for p in self.properties]

    def dtype(self, endian: str) -> np.dtype:
        """Structured row dtype (only for elements without list properties)."""
        return np.dtype([(p.name, endian + p.type) for p in self.properties])

    def row_bytes(self) -> int:
        return sum(int(p.type[1]) for p in self.properties)


@dataclasses.dataclass
class PlyHeader:
    format: str  # "ascii", "binary_little_endian" or "binary_big_endian"
    elements: list[PlyElement]
    data_offset: int  # byte offset of the payload
    file_size: int
    comments: list[str] = dataclasses.field(default_factory=list)  # text after "comment ", in order

    @property
    def endian(self) -> str:
        return _ENDIAN[self.format]

    def element(self, name: str) -> PlyElement | None:
        return next((e for e in self.elements if e.name == name), None)

    def binary_offset(self, name: str) -> int:
        """Byte offset of element ``name`` in a binary file (elements before it must be list-free)."""
        offset = self.data_offset
        for element in self.elements:
            if element.name == name:
                return offset
            offset += element.count * element.row_bytes()
        raise SceneFileError(None, f"a PLY element named {name!r}", "none")


def read_head(path: Path, what: str = "a readable scene file") -> tuple[int, bytes]:
    """``(file size, first MAX_HEADER_BYTES bytes)``; an OS error becomes SceneFileError.

    Anything but a regular file (a FIFO, a terminal, a device) is refused
    before it is opened: reading one would block forever.
    """
    try:
        with open_regular(path, what) as handle:
            return os.fstat(handle.fileno()).st_size, handle.read(MAX_HEADER_BYTES)
    except OSError as exc:
        raise SceneFileError(path, what, f"an OS error ({exc.strerror or exc})") from None


def read_header(path: Path) -> PlyHeader:
    """Parse the header of the PLY file at ``path``; raises SceneFileError on anything malformed."""
    path = Path(path)
    file_size, head = read_head(path, "a readable PLY file")
    if not head:
        raise SceneFileError(path, "a PLY file", "an empty file")
    if not (head.startswith(PLY_MAGIC) or head.startswith(b"ply\r\n")):
        raise SceneFileError(path, "a PLY file starting with 'ply'", "other content")
    lines: list[bytes] = []
    pos = 0
    while True:
        newline = head.find(b"\n", pos)
        if newline < 0:
            raise SceneFileError(path, "a PLY header ending in an 'end_header' line", f"none in the first {len(head)} bytes")
        line = head[pos:newline].rstrip(b"\r")
        pos = newline + 1
        if line.strip() == b"end_header":
            break
        lines.append(line)
    try:
        text_lines = [line.decode("ascii") for line in lines[1:]]
    except UnicodeDecodeError:
        raise SceneFileError(path, "an ASCII PLY header", "non-ASCII bytes in the header") from None
    return _parse_lines(path, text_lines, pos, file_size)


def _parse_lines(path: Path, lines: list[str], data_offset: int, file_size: int) -> PlyHeader:
    fmt = None
    elements: list[PlyElement] = []
    comments: list[str] = []
    for number, raw in enumerate(lines, start=2):
        words = raw.split()
        if words and words[0] == "comment":
            comments.append(raw.strip()[len("comment"):].strip())
        if not words or words[0] in ("comment", "obj_info"):
            continue
        # Error messages name the line, never echo it: a message must not leak a file's content.
        bad = lambda what, n=number: SceneFileError(path, what, f"something else on header line {n}")  # noqa: E731
        key = words[0]
        if key == "format":
            if len(words) != 3 or words[1] not in _ENDIAN:
                raise bad("'format ascii|binary_little_endian|binary_big_endian 1.0'")
            fmt = words[1]
        elif key == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise bad("'element NAME COUNT' with a non-negative integer count")
            elements.append(PlyElement(words[1], int(words[2]), []))
        elif key == "property":
            if not elements:
                raise bad("a property after an element line")
            if len(words) == 3 and words[1] in PLY_TYPES:
                prop = PlyProperty(words[2], PLY_TYPES[words[1]])
            elif len(words) == 5 and words[1] == "list" and words[2] in PLY_TYPES and words[3] in PLY_TYPES:
                prop = PlyProperty(words[4], PLY_TYPES[words[3]], PLY_TYPES[words[2]])
            else:
                raise bad(f"'property TYPE NAME' with TYPE among {sorted(set(PLY_TYPES))}")
            if prop.name in elements[-1].property_names():
                raise bad(f"unique property names in element {elements[-1].name!r}")
            elements[-1].properties.append(prop)
        else:
            raise bad("a header line starting with format, element, property, comment or obj_info")
    if fmt is None:
        raise SceneFileError(path, "a 'format' line in the PLY header", "none")
    names = [e.name for e in elements]
    if len(set(names)) != len(names):
        raise SceneFileError(path, "unique element names", f"elements {names}")
    return PlyHeader(fmt, elements, data_offset, file_size, comments)


def check_binary_payload(path: Path, header: PlyHeader, name: str, *, last_must_match: bool = True) -> int:
    """Check that element ``name`` fits in the file; return its byte offset.

    Every element up to ``name`` must be list-free. When ``name`` is the last
    element and ``last_must_match``, the file must end exactly after it.
    """
    offset = header.data_offset
    for element in header.elements:
        if element.has_lists:
            raise SceneFileError(path, f"fixed-size rows before element {name!r}", f"list properties in element {element.name!r}")
        size = element.count * element.row_bytes()  # Python ints: no overflow from hostile counts
        if offset + size > header.file_size:
            raise SceneFileError(
                path,
                f"{element.count} {element.name} rows of {element.row_bytes()} bytes ({size} bytes) after byte {offset}",
                f"a file of {header.file_size} bytes (truncated, or the header count is wrong)",
            )
        if element.name == name:
            if last_must_match and element is header.elements[-1] and offset + size != header.file_size:
                raise SceneFileError(
                    path,
                    f"the payload to end after {element.count} {name} rows (at byte {offset + size})",
                    f"{header.file_size - offset - size} extra bytes (the header count does not match the payload)",
                )
            return offset
        offset += size
    raise SceneFileError(path, f"an element named {name!r}", f"elements {[e.name for e in header.elements]}")


ORIGIN_COMMENT = "lyra-origin "  # "comment lyra-origin NAME": the scene's Gaussians.origin, kept across save/load


def origin_from_comments(comments: list[str]) -> str | None:
    """The origin recorded by :data:`ORIGIN_COMMENT` in a header's comments, if any."""
    for comment in comments:
        if comment.startswith(ORIGIN_COMMENT) and comment[len(ORIGIN_COMMENT):].strip():
            return comment[len(ORIGIN_COMMENT):].strip()
    return None


def format_header(elements: list[tuple[str, int, list[tuple[str, str]]]], comments: list[str] = ()) -> bytes:
    """Binary little-endian header for ``[(element, count, [(property, numpy kind+size)])]``."""
    lines = ["ply", "format binary_little_endian 1.0"]
    lines += [f"comment {c}" for c in comments]
    for name, count, props in elements:
        lines.append(f"element {name} {count}")
        lines += [f"property {PLY_NAMES[t]} {p}" for p, t in props]
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii")

"""glTF 2.0 binary (``.glb``) with ``KHR_gaussian_splatting``: read and write.

Layout written (the Khronos extension README): one mesh with one ``POINTS``
primitive (``mode: 0``) whose extension object is ``{"kernel": "ellipse",
"colorSpace": "srgb_rec709_display", "projection": "perspective",
"sortingMethod": "cameraDistance"}``, and one float accessor per attribute,
each in its own bufferView of the GLB's single BIN chunk:

* ``POSITION`` VEC3 (with min/max, as glTF requires);
* ``KHR_gaussian_splatting:ROTATION`` VEC4, a unit quaternion (x, y, z, w);
* ``KHR_gaussian_splatting:SCALE`` VEC3, linear;
* ``KHR_gaussian_splatting:OPACITY`` SCALAR in [0, 1];
* ``KHR_gaussian_splatting:SH_DEGREE_l_COEF_n`` VEC3 (r, g, b), one per
  coefficient, DC raw (colour = 0.5 + 0.282 * DC), same real-SH basis as 3DGS;
* ``COLOR_0`` VEC4 unsigned-byte normalised: the base colour and opacity, for
  viewers that draw the primitive as plain points.

glTF is right-handed and Y-up; our scenes are RDF (-y up), so centres,
rotations and SH are turned half a turn about z on the way out and back on the
way in (:mod:`lyra.scene.frames`). The extension's ``projection`` has one
value, ``perspective``: a scene trained with 3DGUT (Lyra's) cannot say so, and
other viewers render it with the EWA ellipse kernel. Node transforms are
ignored on reading (our writer and splat-transform's put the splats at the root).

Reading is our own ``json`` + numpy walk rather than pygltflib: pygltflib
parses the JSON into objects but leaves every accessor/bufferView bound to
the caller, which is the part a hostile file attacks, so it would add a
dependency without removing any of the checks below. Every index, count,
offset and stride is checked against the BIN chunk before a byte is viewed,
and counts are bounded by :data:`MAX_SPLATS`, so lying accessors, out-of-range
bufferViews, huge counts and bad JSON raise :class:`SceneFileError`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch

from lyra.errors import SceneFileError
from lyra.fileio import atomic_write, open_regular
from lyra.scene.formats.checks import reject_or_drop_invalid
from lyra.scene.frames import rdf_to_y_up, y_up_to_rdf
from lyra.scene.gaussians import Gaussians, normalize_quats
from lyra.scene.sequence import GaussianSequence
from lyra.scene.sh import MAX_SH_DEGREE, rgb_to_sh_dc

MAGIC = b"glTF"
VERSION = 2
HEADER = struct.Struct("<4sII")
CHUNK = struct.Struct("<II")
JSON_CHUNK, BIN_CHUNK = 0x4E4F534A, 0x004E4942
EXTENSION = "KHR_gaussian_splatting"
PREFIX = EXTENSION + ":"
MAX_SPLATS = 1 << 27  # as SPZ: a file claiming more is corrupt
MAX_JSON_BYTES = 64 << 20
POINTS = 0
ARRAY_BUFFER = 34962
FLOAT, UNSIGNED_BYTE = 5126, 5121
# componentType -> (numpy dtype, divisor when normalized): the types the extension allows
_COMPONENTS = {5120: ("<i1", 127.0), 5121: ("<u1", 255.0), 5122: ("<i2", 32767.0), 5123: ("<u2", 65535.0),
               5126: ("<f4", None)}
_WIDTH = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}
EXTENSION_PROPERTIES = {"kernel": "ellipse", "colorSpace": "srgb_rec709_display", "projection": "perspective",
                        "sortingMethod": "cameraDistance"}


def sh_attribute(degree: int, coefficient: int) -> str:
    """Attribute name of SH coefficient ``coefficient`` (0..2*degree) of band ``degree``."""
    return f"{PREFIX}SH_DEGREE_{degree}_COEF_{coefficient}"


# ---------------------------------------------------------------------------------------------- write
def encode(gaussians: Gaussians, sh_degree: int | None = None) -> list:
    """The pieces (bytes and contiguous arrays, in file order) of a ``.glb`` holding ``gaussians``
    (RDF in memory, Y-up in the file). Written one after the other, never joined: a 1M-splat
    SH-3 file is 240 MB, and every join would copy it again."""
    g = gaussians if sh_degree is None else gaussians.with_sh_degree(sh_degree)
    g = rdf_to_y_up(g.to(dtype=torch.float32))
    n, degree = len(g), g.sh_degree
    blobs: list = []  # contiguous arrays and zero padding
    views: list[dict] = []
    offset = 0
    accessors: list[dict] = []
    attributes: dict[str, int] = {}

    def add(name: str, array: np.ndarray, kind: str, component: int = FLOAT, **extra) -> None:
        nonlocal offset
        data = np.ascontiguousarray(array)
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": data.nbytes, "target": ARRAY_BUFFER})
        blobs.extend([data, b"\0" * (-data.nbytes % 4)])  # every view starts 4-byte aligned
        offset += data.nbytes + (-data.nbytes % 4)
        accessors.append({"bufferView": len(views) - 1, "componentType": component, "count": n, "type": kind, **extra})
        attributes[name] = len(accessors) - 1

    primitives = []
    if n:
        means = g.means.numpy()
        add("POSITION", means, "VEC3", min=means.min(0).tolist(), max=means.max(0).tolist())
        rgba = np.concatenate([g.rgb().clamp(0, 1).numpy(), g.opacities[:, None].clamp(0, 1).numpy()], axis=1)
        add("COLOR_0", np.rint(rgba * 255).astype(np.uint8), "VEC4", UNSIGNED_BYTE, normalized=True)
        add(PREFIX + "ROTATION", normalize_quats(g.quats).numpy()[:, [1, 2, 3, 0]], "VEC4")
        add(PREFIX + "SCALE", g.scales.numpy(), "VEC3")
        add(PREFIX + "OPACITY", g.opacities.numpy(), "SCALAR")
        sh = g.sh.numpy()
        for band in range(degree + 1):
            for m in range(2 * band + 1):
                add(sh_attribute(band, m), sh[:, band * band + m], "VEC3")
        primitive = {"attributes": attributes, "mode": POINTS, "extensions": {EXTENSION: dict(EXTENSION_PROPERTIES)}}
        if gaussians.origin and gaussians.origin.isidentifier():
            primitive["extras"] = {"lyraOrigin": gaussians.origin}
        primitives.append(primitive)
    doc: dict = {
        "asset": {"version": "2.0", "generator": "Lyra Studio"},
        "extensionsUsed": [EXTENSION],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        # An empty scene has no mesh: glTF accessors need a count of at least 1.
        "nodes": [{"mesh": 0}] if n else [{"extras": {"lyraSplats": 0}}],
    }
    if n:
        doc.update(meshes=[{"primitives": primitives}], accessors=accessors, bufferViews=views,
                   buffers=[{"byteLength": offset}])
    text = json.dumps(doc, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    head = CHUNK.pack(len(text), JSON_CHUNK) + text + (CHUNK.pack(offset, BIN_CHUNK) if n else b"")
    total = HEADER.size + len(head) + offset
    return [HEADER.pack(MAGIC, VERSION, total) + head, *blobs]


def write(scene: Gaussians | GaussianSequence, path: str | Path, *, overwrite: bool = True,
          sh_degree: int | None = None) -> None:
    """Write one ``.glb`` atomically. A 4D clip goes to a sequence folder of GLB frames instead
    (``lyra.scene.save(clip, path, format="sequence-glb")``); a one-frame sequence is written as its frame."""
    path = Path(path)
    if isinstance(scene, GaussianSequence):
        if len(scene) != 1:
            raise SceneFileError(path, "a static scene for one .glb (save a clip with format='sequence-glb')",
                                 f"a sequence of {len(scene)} frames")
        scene = scene.frames[0]
    pieces = encode(scene, sh_degree)
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as handle:
            for piece in pieces:
                handle.write(memoryview(piece).cast("B") if isinstance(piece, np.ndarray) else piece)
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None


# ---------------------------------------------------------------------------------------------- read
def _json_document(path: Path, text: bytes) -> dict:
    """The GLB's JSON chunk as a dict; SceneFileError (never quoting the file) otherwise."""
    if len(text) > MAX_JSON_BYTES:
        raise SceneFileError(path, f"a JSON chunk under {MAX_JSON_BYTES} bytes", f"{len(text)} bytes")
    try:
        doc = json.loads(text)
    except UnicodeDecodeError:
        raise SceneFileError(path, "a UTF-8 JSON chunk", "bytes that are not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise SceneFileError(path, "a valid JSON chunk", f"invalid JSON at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise SceneFileError(path, "a JSON chunk of modest depth", "values nested too deeply") from None
    except (ValueError, OverflowError):
        raise SceneFileError(path, "a JSON chunk with ordinary numbers", "a number too long to convert") from None
    if not isinstance(doc, dict):
        raise SceneFileError(path, "a JSON object in the GLB", f"a JSON {type(doc).__name__}")
    return doc


def _split(path: Path, data: bytes) -> tuple[dict, bytes]:
    """The JSON document and the BIN chunk of a GLB; SceneFileError for anything malformed."""
    if len(data) < HEADER.size:
        raise SceneFileError(path, "a GLB header (12 bytes)", f"{len(data)} bytes")
    magic, version, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SceneFileError(path, "a binary glTF ('glTF' magic)", "other bytes")
    if version != VERSION:
        raise SceneFileError(path, "glTF version 2", f"version {version}")
    if length > len(data):
        raise SceneFileError(path, f"a GLB of the {length} bytes its header states", f"{len(data)} bytes")
    chunks: list[tuple[int, bytes]] = []
    at = HEADER.size
    while at + CHUNK.size <= length:
        size, kind = CHUNK.unpack_from(data, at)
        at += CHUNK.size
        if size > length - at:
            raise SceneFileError(path, "GLB chunks inside the file", f"a chunk of {size} bytes at offset {at}")
        chunks.append((kind, data[at: at + size]))
        at += size + (-size % 4)
    if not chunks or chunks[0][0] != JSON_CHUNK:
        raise SceneFileError(path, "a JSON chunk first in the GLB", "none")
    doc = _json_document(path, chunks[0][1])
    binary = next((chunk for kind, chunk in chunks[1:] if kind == BIN_CHUNK), b"")
    return doc, binary


def _index(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _entry(path: Path, doc: dict, key: str, index) -> dict:
    items = doc.get(key)
    if not isinstance(items, list) or not _index(index) or index >= len(items) or not isinstance(items[index], dict):
        raise SceneFileError(path, f"an index into '{key}'", f"{index!r} (of {len(items) if isinstance(items, list) else 0})")
    return items[index]


def _accessor(path: Path, doc: dict, binary: bytes, index, name: str, kinds: tuple[str, ...]) -> np.ndarray:
    """Accessor ``index`` as float32 ``[count, width]``, every bound checked against the BIN chunk."""
    acc = _entry(path, doc, "accessors", index)
    kind, component, count = acc.get("type"), acc.get("componentType"), acc.get("count")
    where = f"accessor of {name}"
    if not isinstance(kind, str) or kind not in kinds:
        raise SceneFileError(path, f"a {'/'.join(kinds)} {where}", f"type {kind!r}")
    if not _index(component) or component not in _COMPONENTS or (component != FLOAT and name.startswith(PREFIX + "SH_")):
        raise SceneFileError(path, f"a float or normalised integer {where}", f"componentType {component!r}")
    if not _index(count) or not 1 <= count <= MAX_SPLATS:
        raise SceneFileError(path, f"a {where} with 1 to {MAX_SPLATS} elements", f"count {count!r}")
    if "sparse" in acc or "bufferView" not in acc:
        raise SceneFileError(path, f"a dense {where} in a bufferView", "a sparse or bufferView-less accessor")
    view = _entry(path, doc, "bufferViews", acc["bufferView"])
    if view.get("buffer") != 0 or "uri" in _entry(path, doc, "buffers", 0):
        raise SceneFileError(path, f"a {where} in the GLB's own BIN chunk", "a reference to another buffer")
    dtype, divisor = _COMPONENTS[component]
    width, item = _WIDTH[kind], np.dtype(dtype).itemsize
    element = width * item
    view_offset, view_length = view.get("byteOffset", 0), view.get("byteLength")
    offset, stride = acc.get("byteOffset", 0), view.get("byteStride", element)
    if not all(_index(v) for v in (view_offset, view_length, offset, stride)):
        raise SceneFileError(path, f"non-negative integer offsets and lengths for the {where}", "other values")
    if view_offset + view_length > len(binary):
        raise SceneFileError(path, f"a bufferView inside the {len(binary)}-byte BIN chunk",
                             f"bytes {view_offset}..{view_offset + view_length}")
    if stride < element or stride > 252 or offset % item or (view_offset + offset) % item or stride % item:
        raise SceneFileError(path, f"an aligned stride of {element} to 252 bytes for the {where}", f"stride {stride}")
    if offset + (count - 1) * stride + element > view_length:
        raise SceneFileError(path, f"{count} elements of the {where} inside its bufferView",
                             f"a view of {view_length} bytes")
    values = np.ndarray((count, width), dtype=dtype, buffer=binary, offset=view_offset + offset, strides=(stride, item))
    out = values.astype(np.float32)
    if divisor is not None and acc.get("normalized") is True:
        out = np.maximum(out / divisor, -1.0)
    return out


def _primitives(path: Path, doc: dict) -> list[dict]:
    meshes = doc.get("meshes", [])
    if not isinstance(meshes, list):
        raise SceneFileError(path, "a 'meshes' list", f"a JSON {type(meshes).__name__}")
    found = []
    for mesh in meshes:
        primitives = mesh.get("primitives") if isinstance(mesh, dict) else None
        if not isinstance(primitives, list):
            raise SceneFileError(path, "meshes with a 'primitives' list", "a mesh without one")
        for primitive in primitives:
            extensions = primitive.get("extensions") if isinstance(primitive, dict) else None
            if isinstance(extensions, dict) and EXTENSION in extensions:
                found.append(primitive)
    return found


def _sh_degree(path: Path, attributes: dict) -> int:
    """Highest SH band fully present (bands must be complete and in order); -1 when DC is missing too."""
    degree = -1
    for band in range(MAX_SH_DEGREE + 1):
        present = [sh_attribute(band, m) in attributes for m in range(2 * band + 1)]
        if not any(present):
            break
        if not all(present):
            raise SceneFileError(path, f"all {2 * band + 1} coefficients of SH band {band}", f"{sum(present)}")
        degree = band
    later = [band for band in range(degree + 1, MAX_SH_DEGREE + 1) if sh_attribute(band, 0) in attributes]
    if later:
        raise SceneFileError(path, "SH bands without gaps, from band 0", f"band {later[0]} without band {degree + 1}")
    return degree


def _decode_primitive(path: Path, doc: dict, binary: bytes, primitive: dict) -> Gaussians:
    if primitive.get("mode", 4) != POINTS:
        raise SceneFileError(path, f"a POINTS primitive (mode 0) for {EXTENSION}", f"mode {primitive.get('mode', 4)!r}")
    attributes = primitive.get("attributes")
    if not isinstance(attributes, dict):
        raise SceneFileError(path, "a primitive with an 'attributes' object", "none")
    required = ("POSITION", PREFIX + "ROTATION", PREFIX + "SCALE", PREFIX + "OPACITY")
    missing = [name for name in required if name not in attributes]
    if missing:
        raise SceneFileError(path, f"the {EXTENSION} attributes {', '.join(required)}", f"{', '.join(missing)} missing")

    def read(name: str, *kinds: str) -> np.ndarray:
        return _accessor(path, doc, binary, attributes[name], name, kinds)

    means = read("POSITION", "VEC3")
    n = len(means)
    quats_xyzw, scales, opacities = read(PREFIX + "ROTATION", "VEC4"), read(PREFIX + "SCALE", "VEC3"), read(PREFIX + "OPACITY", "SCALAR")[:, 0]
    degree = _sh_degree(path, attributes)
    if degree >= 0:
        coefficients = [read(sh_attribute(band, m), "VEC3") for band in range(degree + 1) for m in range(2 * band + 1)]
        arrays = [quats_xyzw, scales, opacities, *coefficients]
    elif "COLOR_0" in attributes:  # no SH: the fallback colour is the base colour
        colors = read("COLOR_0", "VEC3", "VEC4")[:, :3]
        coefficients = [rgb_to_sh_dc(torch.from_numpy(colors)).numpy()]
        arrays = [quats_xyzw, scales, opacities, colors]
    else:
        coefficients = [np.zeros((n, 3), np.float32)]
        arrays = [quats_xyzw, scales, opacities]
    if any(len(a) != n for a in arrays):
        raise SceneFileError(path, f"{n} elements in every attribute (as POSITION)", f"{sorted({len(a) for a in arrays})}")
    sh = np.empty((n, len(coefficients), 3), np.float32)  # [N, K, 3], filled without a stacked temporary
    for k, coefficient in enumerate(coefficients):
        sh[:, k] = coefficient
    with np.errstate(invalid="ignore"):
        if (opacities < 0).any() or (opacities > 1).any():
            raise SceneFileError(path, "opacities in [0, 1]", f"values from {np.nanmin(opacities):.3g} to {np.nanmax(opacities):.3g}")
        if (scales < 0).any():
            raise SceneFileError(path, "non-negative linear scales", f"a smallest scale of {np.nanmin(scales):.3g}")
    wxyz = torch.from_numpy(np.ascontiguousarray(quats_xyzw[:, [3, 0, 1, 2]]))
    extras = primitive.get("extras")
    origin = extras.get("lyraOrigin") if isinstance(extras, dict) else None
    return Gaussians(torch.from_numpy(means), wxyz, torch.from_numpy(scales), torch.from_numpy(np.ascontiguousarray(opacities)),
                     torch.from_numpy(sh), origin=origin if isinstance(origin, str) and origin.isidentifier() else None)


def decode(path: Path, data: bytes, drop_invalid: bool = False) -> Gaussians:
    """Gaussians (RDF) of the GLB bytes ``data``; all Gaussian primitives of all meshes, concatenated."""
    doc, binary = _split(path, data)
    primitives = _primitives(path, doc)
    if not primitives:
        nodes = doc.get("nodes")
        first = nodes[0] if isinstance(nodes, list) and nodes else None
        extras = first.get("extras") if isinstance(first, dict) else None
        if isinstance(extras, dict) and extras.get("lyraSplats") == 0:
            return Gaussians.empty()  # what our writer makes of an empty scene
        raise SceneFileError(path, f"a glTF primitive with {EXTENSION}", "none (a plain glTF model?)")
    parts = [_decode_primitive(path, doc, binary, primitive) for primitive in primitives]
    scene = Gaussians.cat(parts) if len(parts) > 1 else parts[0]
    scene = reject_or_drop_invalid(scene, path, drop_invalid)
    scene = y_up_to_rdf(scene.replace(quats=normalize_quats(scene.quats)))
    return scene


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load a ``.glb`` with ``KHR_gaussian_splatting`` as activated Gaussians in RDF. Raises SceneFileError."""
    path = Path(path)
    with open_regular(path, "a .glb file") as handle:
        data = handle.read()
    return decode(path, data, drop_invalid)


def glb_info(path: Path) -> tuple[int, int]:
    """``(splat count, SH degree)`` from the JSON chunk alone (what a lazy sequence of GLB frames opens with)."""
    with open_regular(path, "a .glb file") as handle:
        head = handle.read(HEADER.size + CHUNK.size)
        if len(head) < HEADER.size + CHUNK.size or head[:4] != MAGIC:
            raise SceneFileError(path, "a GLB header and JSON chunk", f"{len(head)} bytes of another kind")
        size, kind = CHUNK.unpack_from(head, HEADER.size)
        if kind != JSON_CHUNK or size > MAX_JSON_BYTES:
            raise SceneFileError(path, f"a JSON chunk under {MAX_JSON_BYTES} bytes first", f"chunk {kind:#x} of {size} bytes")
        doc = _json_document(path, handle.read(size))
    total, degree = 0, 0
    for primitive in _primitives(path, doc):
        attributes = primitive.get("attributes")
        if not isinstance(attributes, dict) or "POSITION" not in attributes:
            raise SceneFileError(path, "a primitive with a POSITION attribute", "none")
        count = _entry(path, doc, "accessors", attributes["POSITION"]).get("count")
        if not _index(count) or count > MAX_SPLATS:
            raise SceneFileError(path, f"a POSITION count of at most {MAX_SPLATS}", f"{count!r}")
        total += count
        degree = max(degree, _sh_degree(path, attributes))
    return total, degree

"""Hostile GLBs: lying accessors, out-of-range bufferViews, huge counts, bad JSON -> SceneFileError, never more."""

from __future__ import annotations

import json
import struct
import tracemalloc
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lyra.errors import SceneFileError
from lyra.scene import Gaussians, load, save

from .conftest import make_gaussians

MAX_PEAK_BYTES = 32 << 20  # a valid 8-splat GLB is a few kB; a lying accessor must not cost more


@pytest.fixture(scope="module")
def seed_glb(tmp_path_factory) -> tuple[dict, bytes]:
    path = tmp_path_factory.mktemp("glb") / "seed.glb"
    save(make_gaussians(8, 1), path)
    data = path.read_bytes()
    json_len = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20: 20 + json_len])
    binary = data[28 + json_len:]
    return doc, binary


def pack(doc_bytes: bytes, binary: bytes) -> bytes:
    doc_bytes += b" " * (-len(doc_bytes) % 4)
    body = struct.pack("<II", len(doc_bytes), 0x4E4F534A) + doc_bytes + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def load_only_scene_file_error(path, data: bytes) -> Gaussians | None:
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = load(path)
        assert isinstance(result, Gaussians)
        return result
    except SceneFileError:
        return None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < MAX_PEAK_BYTES, f"{peak} bytes allocated for a {len(data)}-byte file"


def edited(doc: dict, edit) -> bytes:
    copy = json.loads(json.dumps(doc))
    edit(copy)
    return json.dumps(copy).encode()


def accessor(doc, name="POSITION"):
    return doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"][name]]


def view(doc, name="POSITION"):
    return doc["bufferViews"][accessor(doc, name)["bufferView"]]


HOSTILE_EDITS = {
    "count larger than the view": lambda d: accessor(d).update(count=9),
    "huge count": lambda d: accessor(d).update(count=2**40),
    "negative count": lambda d: accessor(d).update(count=-1),
    "count as a string": lambda d: accessor(d).update(count="8"),
    "accessor index out of range": lambda d: d["meshes"][0]["primitives"][0]["attributes"].update(POSITION=999),
    "accessor index negative": lambda d: d["meshes"][0]["primitives"][0]["attributes"].update(POSITION=-1),
    "view past the BIN chunk": lambda d: view(d).update(byteOffset=10**9),
    "view length past the chunk": lambda d: view(d).update(byteLength=10**12),
    "negative view offset": lambda d: view(d).update(byteOffset=-4),
    "bufferView index out of range": lambda d: accessor(d).update(bufferView=500),
    "accessor offset past its view": lambda d: accessor(d).update(byteOffset=4096),
    "misaligned accessor offset": lambda d: accessor(d).update(byteOffset=2),
    "stride smaller than an element": lambda d: view(d).update(byteStride=4),
    "stride too large": lambda d: view(d).update(byteStride=4096),
    "wrong type": lambda d: accessor(d).update(type="MAT4"),
    "wrong component type": lambda d: accessor(d).update(componentType=5125),
    "sparse accessor": lambda d: accessor(d).update(sparse={"count": 1}),
    "external buffer": lambda d: d["buffers"][0].update(uri="data:application/octet-stream;base64,AAAA"),
    "other buffer": lambda d: view(d).update(buffer=3),
    "attribute counts disagree": lambda d: accessor(d, "KHR_gaussian_splatting:SCALE").update(count=4),
    "mode triangles": lambda d: d["meshes"][0]["primitives"][0].update(mode=4),
    "missing rotation": lambda d: d["meshes"][0]["primitives"][0]["attributes"].pop("KHR_gaussian_splatting:ROTATION"),
    "SH band with a gap": lambda d: d["meshes"][0]["primitives"][0]["attributes"].pop(
        "KHR_gaussian_splatting:SH_DEGREE_1_COEF_1"),
    "SH band 2 without 1": lambda d: d["meshes"][0]["primitives"][0]["attributes"].update(
        {"KHR_gaussian_splatting:SH_DEGREE_2_COEF_0": 0}),
    "no splat primitive": lambda d: d["meshes"][0]["primitives"][0].pop("extensions"),
    "meshes not a list": lambda d: d.update(meshes={"a": 1}),
    "primitives not a list": lambda d: d["meshes"][0].update(primitives=7),
    "accessors not a list": lambda d: d.update(accessors=None),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_EDITS))
def test_lying_json_raises_scene_file_error(tmp_path, seed_glb, name):
    doc, binary = seed_glb
    with pytest.raises(SceneFileError):
        load((tmp_path / "h.glb").write_bytes(pack(edited(doc, HOSTILE_EDITS[name]), binary)) and tmp_path / "h.glb")


@pytest.mark.parametrize("text", [b"{", b"[]", b"null", b"\xff\xfe", b"[" * 100_000, b'{"a": 1' + b"0" * 5000 + b"}",
                                  b"{}"])
def test_bad_json_raises_scene_file_error(tmp_path, seed_glb, text):
    with pytest.raises(SceneFileError):
        load((tmp_path / "h.glb").write_bytes(pack(text, seed_glb[1])) and tmp_path / "h.glb")


@pytest.mark.parametrize("data", [b"glTF", b"glTF" + struct.pack("<II", 1, 12), b"glTF" + struct.pack("<II", 2, 10**9),
                                  b"glTF" + struct.pack("<II", 2, 28) + struct.pack("<II", 999, 0x4E4F534A) + b"{}  ",
                                  b"glTF" + struct.pack("<II", 2, 24) + struct.pack("<II", 4, 0x004E4942) + b"\0" * 4])
def test_broken_containers_raise_scene_file_error(tmp_path, data):
    (tmp_path / "h.glb").write_bytes(data)
    with pytest.raises(SceneFileError):
        load(tmp_path / "h.glb")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_mutations_raise_only_scene_file_error(tmp_path, seed_glb, data):
    raw = bytearray(pack(json.dumps(seed_glb[0]).encode(), seed_glb[1]))
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    load_only_scene_file_error(tmp_path / "m.glb", bytes(raw[:cut] if data.draw(st.booleans()) else raw))


json_values = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63), st.floats(), st.text(max_size=4),
                        st.lists(st.integers(-5, 5), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_json_value_mutations_raise_only_scene_file_error(tmp_path, seed_glb, data):
    """Any value anywhere in the JSON replaced by any JSON value: a scene or a SceneFileError."""
    doc = json.loads(json.dumps(seed_glb[0]))
    for _ in range(data.draw(st.integers(1, 3))):
        node, key = doc, None
        while True:  # walk down to a random leaf or container
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys or (key is not None and data.draw(st.booleans())):
                break
            key = data.draw(st.sampled_from(keys))
            parent, node = node, node[key]
        if key is not None:
            parent[key] = data.draw(json_values)
    load_only_scene_file_error(tmp_path / "j.glb", pack(json.dumps(doc).encode(), seed_glb[1]))

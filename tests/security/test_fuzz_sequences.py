"""Fuzzing the sequence readers: hostile manifests and mutated zips only ever raise SceneFileError."""

from __future__ import annotations

import io
import json
import tracemalloc
import warnings
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence, load, save
from tests.security.conftest import tiny_gaussians

MAX_PEAK_BYTES = 64 << 20  # two 8-splat frames need a few kB; nothing a fuzzer writes may cost more
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)
frame_names = st.sampled_from(["frame_00000.ply", "frame_00001.ply", "missing.ply", "../frame_00000.ply", ""])
manifests = st.fixed_dictionaries({}, optional={
    "frames": st.lists(frame_names, max_size=6) | json_values,
    "times": st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(), max_size=6) | json_values,
    "fps": st.floats(allow_nan=True, allow_infinity=True) | st.integers() | json_values,
    "format": json_values,
})


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    save(GaussianSequence([tiny_gaussians(8, seed=0), tiny_gaussians(8, seed=1)]), folder / "clip")
    return folder / "clip"


@pytest.fixture(scope="module")
def valid_zip(tmp_path_factory) -> bytes:
    folder = tmp_path_factory.mktemp("zipped") / "clip"
    save(GaussianSequence([tiny_gaussians(8, seed=0), tiny_gaussians(8, seed=1)]), folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"clip/{path.name}")
    assert len(load(folder)) == 2
    return buffer.getvalue()


def _only_scene_file_errors(call) -> None:
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
        assert isinstance(result, GaussianSequence)
    except SceneFileError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES


@FUZZ
@given(manifest=manifests)
def test_fuzzed_manifest_only_raises_scene_file_errors(frames_folder, manifest):
    (frames_folder / "manifest.json").write_text(json.dumps(manifest))
    _only_scene_file_errors(lambda: load(frames_folder))


@FUZZ
@given(text=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_manifest_bytes_only_raise_scene_file_errors(frames_folder, text):
    (frames_folder / "manifest.json").write_bytes(text)
    _only_scene_file_errors(lambda: load(frames_folder))


@FUZZ
@given(data=st.data())
def test_mutated_zip_only_raises_scene_file_errors(tmp_path, valid_zip, data):
    raw = bytearray(valid_zip)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(raw) // 2, len(raw)))
    path = tmp_path / "clip.zip"
    path.write_bytes(bytes(raw[:cut]))
    _only_scene_file_errors(lambda: load(path))


member_names = st.sampled_from(["clip/frame_00000.ply", "frame_00001.ply", "f.splat", "clip/manifest.json",
                                "../up.ply", "/abs.ply", "a\\b.ply", "C:x.ply", "clip/", ".hidden.ply"]) | st.text(max_size=30)


@FUZZ
@given(members=st.lists(st.tuples(member_names, st.binary(max_size=64) | st.just(b"frame")), max_size=6),
       manifest=st.none() | manifests)
def test_hostile_zip_members_only_raise_scene_file_errors(tmp_path, frames_folder, members, manifest):
    buffer = io.BytesIO()
    frame = (frames_folder / "frame_00000.ply").read_bytes()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate member names are part of the attack
        for name, content in members:
            if name.split("\0")[0]:  # zipfile cuts names at NUL and cannot write an empty one
                archive.writestr(name, frame if content == b"frame" else content)
        if manifest is not None:
            archive.writestr("clip/manifest.json", json.dumps(manifest))
    path = tmp_path / "hostile.zip"
    path.write_bytes(buffer.getvalue())
    _only_scene_file_errors(lambda: load(path))

"""Fuzzing the PLY reader: mutated headers and payloads only ever raise SceneFileError."""

from __future__ import annotations

import tracemalloc
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lyra.errors import SceneFileError
from lyra.scene import Gaussians, load, save

N_SPLATS = 8
MAX_PEAK_BYTES = 32 << 20  # a valid 8-splat file needs a few kB; a lying header must not cost more


@pytest.fixture(scope="module")
def valid_ply(tmp_path_factory):

    path = tmp_path_factory.mktemp("fuzz") / "seed.ply"
    gen = torch.Generator().manual_seed(0)
    g = Gaussians(torch.randn(N_SPLATS, 3, generator=gen), torch.nn.functional.normalize(torch.randn(N_SPLATS, 4, generator=gen), dim=1),
                  torch.rand(N_SPLATS, 3, generator=gen) * 0.1 + 0.01, torch.rand(N_SPLATS, generator=gen) * 0.9 + 0.05,
                  torch.randn(N_SPLATS, 4, 3, generator=gen))
    save(g, path)
    return path.read_bytes()


def check_only_scene_file_errors(path, data: bytes) -> None:
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = load(path)
        assert isinstance(result, Gaussians)
    except SceneFileError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"{peak} bytes allocated for a {len(data)}-byte file"


header_edits = st.sampled_from([
    (b"element vertex 8", b"element vertex 18446744073709551615"),
    (b"element vertex 8", b"element vertex 4000000000"),
    (b"element vertex 8", b"element vertex 7"),
    (b"element vertex 8", b"element vertex -1"),
    (b"element vertex 8", b"element vertex 8 9"),
    (b"binary_little_endian", b"ascii"),
    (b"binary_little_endian", b"binary_big_endian"),
    (b"binary_little_endian", b"binary_middle_endian"),
    (b"property float x", b"property double x"),
    (b"property float x", b"property list uchar float x"),
    (b"property float y", b"property float x"),
    (b"property float opacity", b"property uchar opacity"),
    (b"property float rot_0", b""),
    (b"end_header", b"end_headr"),
    (b"ply\n", b"plx\n"),
    (b"element vertex 8", b"element chunk 1\nproperty float a\nelement vertex 8"),
    (b"element vertex 8", b"element face 99999999999\nproperty list uchar int vertex_indices\nelement vertex 8"),
])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=header_edits, extra=st.binary(max_size=8))
def test_header_mutations_raise_only_scene_file_error(tmp_path, valid_ply, edit, extra):
    old, new = edit
    check_only_scene_file_errors(tmp_path / "m.ply", valid_ply.replace(old, new, 1) + extra)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_byte_mutations_raise_only_scene_file_error(tmp_path, valid_ply, data):
    raw = bytearray(valid_ply)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    check_only_scene_file_errors(tmp_path / "m.ply", bytes(raw[:cut]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_ -", max_size=30), max_size=6),
       payload=st.binary(max_size=300))
def test_random_headers_raise_only_scene_file_error(tmp_path, lines, payload):
    header = b"ply\nformat binary_little_endian 1.0\n" + "\n".join(lines).encode() + b"\nend_header\n"
    check_only_scene_file_errors(tmp_path / "r.ply", header + payload)


# ------------------------------------------------------------------ SPZ and SOG readers (same contract)
@pytest.fixture(scope="module")
def valid_compact(tmp_path_factory):
    """Seed files: SPZ v4 (zstd streams), SPZ v3 (one gzip stream), SOG bundle; 8 splats at SH degree 1."""
    import gzip

    import zstandard

    from lyra.scene.formats import spz

    folder = tmp_path_factory.mktemp("fuzz_compact")
    gen = torch.Generator().manual_seed(1)
    g = Gaussians(torch.randn(N_SPLATS, 3, generator=gen), torch.nn.functional.normalize(torch.randn(N_SPLATS, 4, generator=gen), dim=1),
                  torch.rand(N_SPLATS, 3, generator=gen) * 0.1 + 0.01, torch.rand(N_SPLATS, generator=gen) * 0.9 + 0.05,
                  torch.randn(N_SPLATS, 4, 3, generator=gen) * 0.3)
    save(g, folder / "seed.spz")
    save(g, folder / "seed.sog")
    v4 = (folder / "seed.spz").read_bytes()
    entries = [spz.TOC_ENTRY.unpack_from(v4, 32 + 16 * i) for i in range(v4[15])]
    offset, streams = 32 + 16 * len(entries), []
    for compressed, _ in entries:
        streams.append(zstandard.ZstdDecompressor().decompress(v4[offset:offset + compressed]))
        offset += compressed
    v3 = gzip.compress(spz.HEADER_V3.pack(spz.MAGIC, 3, N_SPLATS, 1, 12, 0, 0) + b"".join(streams))
    return {".spz": v4, ".v3.spz": v3, ".sog": (folder / "seed.sog").read_bytes()}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), suffix=st.sampled_from([".spz", ".v3.spz", ".sog"]))
def test_compact_format_mutations_raise_only_scene_file_error(tmp_path, valid_compact, data, suffix):
    raw = bytearray(valid_compact[suffix])
    for _ in range(data.draw(st.integers(0, 6))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    check_only_scene_file_errors(tmp_path / f"m{suffix}", bytes(raw[:cut]))


sog_meta_edits = st.sampled_from([
    ('"version": 2', '"version": 3'), ('"version": 2', '"version": "2"'), ('"count": 8', '"count": 9'),
    ('"count": 8', '"count": 4000000000'), ('"count": 8', '"count": -1'), ('"count": 8', '"count": 8.5'),
    ('"bands": 1', '"bands": 4'), ('"mins": [', '"mins": ["a", '), ('"codebook": [', '"codebook": [1e999, '),
    ('"quats.webp"', '"means_l.webp"'), ('"sh0.webp"', '"../sh0.webp"'), ('"scales.webp"', '"nothere.webp"'),
    ('{"version"', '[{"version"'), ('"shN": {', '"shN": {"count": 70000, '),
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=sog_meta_edits)
def test_sog_meta_mutations_raise_only_scene_file_error(tmp_path, valid_compact, edit):
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(valid_compact[".sog"])) as seed:
        members = {name: seed.read(name) for name in seed.namelist()}
    members["meta.json"] = members["meta.json"].decode().replace(*edit).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, payload in members.items():
            bundle.writestr(name, payload)
    check_only_scene_file_errors(tmp_path / "m.sog", buffer.getvalue())

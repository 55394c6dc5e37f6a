"""glTF ``.glb`` with KHR_gaussian_splatting: round trips, the Y-up frame change (SH included), sequences."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from lyra.edit.sh_rotation import rotate_sh
from lyra.scene import LYRA_ORIGIN, GaussianSequence, load, save
from lyra.scene.formats import detect_format
from lyra.scene.formats.gltf import PREFIX, sh_attribute
from lyra.scene.frames import rdf_to_y_up, y_up_to_rdf
from lyra.scene.sh import eval_sh

from .conftest import make_gaussians

HALF_TURN_Z = torch.diag(torch.tensor([-1.0, -1.0, 1.0]))  # RDF -> glTF's Y-up


def glb_parts(path) -> tuple[dict, bytes]:
    """The JSON document and BIN chunk of a GLB, parsed here independently of the reader under test."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    doc = json.loads(data[20: 20 + json_len])
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    assert bin_type == 0x004E4942
    return doc, data[28 + json_len: 28 + json_len + bin_len]


def file_attribute(doc: dict, binary: bytes, name: str) -> np.ndarray:
    accessor = doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"][name]]
    view = doc["bufferViews"][accessor["bufferView"]]
    assert accessor["componentType"] == 5126
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[accessor["type"]]
    start = view["byteOffset"] + accessor.get("byteOffset", 0)
    return np.frombuffer(binary, "<f4", accessor["count"] * width, start).reshape(-1, width)


def assert_same_scene(a, b, atol=1e-6):
    assert len(a) == len(b) and a.sh_degree == b.sh_degree
    assert torch.allclose(a.means, b.means, atol=atol)
    assert torch.allclose(a.quats, b.quats, atol=atol)  # exactly the same sign, not just the same rotation
    assert torch.allclose(a.scales, b.scales, atol=atol)
    assert torch.allclose(a.opacities, b.opacities, atol=atol)
    assert torch.allclose(a.sh, b.sh, atol=atol)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_glb_round_trip_keeps_every_attribute(tmp_path, degree):
    scene = make_gaussians(50, degree, seed=degree)
    path = save(scene, tmp_path / "scene.glb")
    assert detect_format(path) == "gltf"
    assert_same_scene(load(path), scene)


def test_glb_layout_follows_the_extension(tmp_path):
    scene = make_gaussians(20, 3)
    doc, binary = glb_parts(save(scene, tmp_path / "s.glb"))
    primitive = doc["meshes"][0]["primitives"][0]
    assert primitive["mode"] == 0
    assert primitive["extensions"]["KHR_gaussian_splatting"]["kernel"] == "ellipse"
    assert primitive["extensions"]["KHR_gaussian_splatting"]["colorSpace"] == "srgb_rec709_display"
    assert "KHR_gaussian_splatting" in doc["extensionsUsed"]
    expected = {"POSITION", "COLOR_0", PREFIX + "ROTATION", PREFIX + "SCALE", PREFIX + "OPACITY"}
    expected |= {sh_attribute(band, m) for band in range(4) for m in range(2 * band + 1)}
    assert set(primitive["attributes"]) == expected
    # scale linear, opacity activated, rotation xyzw unit, DC raw: the values in the file are the scene's, Y-up
    y_up = rdf_to_y_up(scene)
    assert np.allclose(file_attribute(doc, binary, PREFIX + "SCALE"), scene.scales.numpy())
    assert np.allclose(file_attribute(doc, binary, PREFIX + "OPACITY")[:, 0], scene.opacities.numpy())
    assert np.allclose(file_attribute(doc, binary, PREFIX + "ROTATION"), y_up.quats.numpy()[:, [1, 2, 3, 0]])
    assert np.allclose(file_attribute(doc, binary, sh_attribute(0, 0)), scene.sh[:, 0].numpy())
    positions = file_attribute(doc, binary, "POSITION")
    assert np.allclose(positions, scene.means.numpy() * [-1, -1, 1])
    accessor = doc["accessors"][primitive["attributes"]["POSITION"]]
    assert np.allclose(accessor["min"], positions.min(0)) and np.allclose(accessor["max"], positions.max(0))


def test_the_file_holds_the_same_scene_turned_y_up_sh_included(tmp_path):
    """Y-up in the file: every splat's covariance is F S F^T, and its colour seen from F d is what it was from d."""
    scene = make_gaussians(40, 3, seed=5)
    doc, binary = glb_parts(save(scene, tmp_path / "s.glb"))
    quats = torch.from_numpy(file_attribute(doc, binary, PREFIX + "ROTATION")[:, [3, 0, 1, 2]].copy())
    file_scene = scene.replace(means=torch.from_numpy(file_attribute(doc, binary, "POSITION").copy()), quats=quats,
                               sh=torch.stack([torch.from_numpy(file_attribute(doc, binary, sh_attribute(b, m)).copy())
                                               for b in range(4) for m in range(2 * b + 1)], dim=1))
    assert torch.allclose(file_scene.covariances(), HALF_TURN_Z @ scene.covariances() @ HALF_TURN_Z, atol=1e-6)
    directions = torch.nn.functional.normalize(torch.randn(40, 3, generator=torch.Generator().manual_seed(1)), dim=1)
    assert torch.allclose(eval_sh(file_scene.sh, directions @ HALF_TURN_Z), eval_sh(scene.sh, directions), atol=1e-5)
    # the sign flip is exactly the general SH rotation for this half turn
    assert torch.allclose(file_scene.sh, rotate_sh(scene.sh, HALF_TURN_Z), atol=1e-5)


def test_frame_change_there_and_back_is_the_identity():
    scene = make_gaussians(30, 3, seed=2)
    assert_same_scene(y_up_to_rdf(rdf_to_y_up(scene)), scene, atol=0)


def test_sh_degree_option_and_origin_survive(tmp_path):
    scene = make_gaussians(10, 3).replace(origin=LYRA_ORIGIN)
    loaded = load(save(scene, tmp_path / "s.glb", sh_degree=1))
    assert loaded.sh_degree == 1 and loaded.origin == LYRA_ORIGIN
    assert torch.allclose(loaded.sh, scene.sh[:, :4])


def test_empty_scene_round_trips(tmp_path):
    loaded = load(save(make_gaussians(5, 2)[:0], tmp_path / "empty.glb"))
    assert len(loaded) == 0


def test_no_overwrite_really_means_no_overwrite(tmp_path):
    path = tmp_path / "s.glb"
    path.write_bytes(b"keep")
    with pytest.raises(Exception, match="exist"):
        save(make_gaussians(5, 0), path, overwrite=False)
    assert path.read_bytes() == b"keep"


def test_a_clip_goes_out_as_one_glb_per_frame(tmp_path):
    clip = GaussianSequence([make_gaussians(20, 2, seed=1), make_gaussians(35, 2, seed=2)], times=[0.0, 0.5], fps=2.0)
    folder = save(clip, tmp_path / "clip.glb")
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.glb", "frame_00001.glb", "manifest.json"]
    loaded = load(folder)
    assert isinstance(loaded, GaussianSequence) and loaded.times == [0.0, 0.5] and loaded.fps == 2.0
    for got, want in zip(loaded.frames, clip.frames, strict=True):
        assert_same_scene(got, want)
    explicit = save(clip, tmp_path / "explicit", format="sequence-glb")
    assert (explicit / "frame_00001.glb").is_file()


def test_color_0_is_the_fallback_when_sh_are_absent(tmp_path):
    """A GLB from a writer that stores only COLOR_0 (no SH attributes) loads with that colour."""
    scene = make_gaussians(8, 0)
    path = save(scene, tmp_path / "s.glb")
    doc, binary = glb_parts(path)
    del doc["meshes"][0]["primitives"][0]["attributes"][sh_attribute(0, 0)]
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    loaded = load(path)
    assert torch.allclose(loaded.rgb(), scene.rgb().clamp(0, 1), atol=1 / 255)

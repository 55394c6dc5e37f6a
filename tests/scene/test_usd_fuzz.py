"""Hostile USD files -> SceneFileError, never a crash, a hang or unbounded memory in our process.

usd-core parses in a child process under an address-space limit (see
lyra/scene/formats/usd_stage_reader.py); these tests feed it lying layers and
mutated bytes. Each read starts a child (about a second on a loaded box), so
the example counts are modest.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lyra.errors import SceneFileError
from lyra.scene import Gaussians, GaussianSequence, load, save

from .conftest import make_gaussians

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("usd")
    return {suffix: save(make_gaussians(6, 1), folder / f"seed{suffix}").read_bytes() for suffix in (".usda", ".usdc", ".usdz")}


def load_only_scene_file_error(path, data: bytes):
    path.write_bytes(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = load(path)
        assert isinstance(result, (Gaussians, GaussianSequence))
        return result
    except SceneFileError:
        return None


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


LYING_LAYERS = {
    "SH degree out of range": lambda t: replace_once(t, "int radiance:sphericalHarmonicsDegree = 1",
                                                     "int radiance:sphericalHarmonicsDegree = 7"),
    "SH degree too high for the coefficients": lambda t: replace_once(t, "int radiance:sphericalHarmonicsDegree = 1",
                                                                      "int radiance:sphericalHarmonicsDegree = 3"),
    "Z-up stage": lambda t: replace_once(t, 'upAxis = "Y"', 'upAxis = "Z"'),
    "no splat prim": lambda t: replace_once(t, "def ParticleField3DGaussianSplat", "def Xform"),
    "opacities as strings": lambda t: replace_once(t, "float[] opacities = [", 'string[] opacities = ["a", '),
    "opacity above one": lambda t: replace_once(t, "float[] opacities = [", "float[] opacities = [7, "),
}


def drop_first_scale(text: str) -> str:
    start = text.index("float3[] scales = [") + len("float3[] scales = [")
    end = text.index(")", start) + 2  # "(a, b, c), "
    return text[:start] + text[end:]


LYING_LAYERS["fewer scales than positions"] = drop_first_scale


@pytest.mark.parametrize("name", sorted(LYING_LAYERS))
def test_lying_layers_raise_scene_file_error(tmp_path, seeds, name):
    text = LYING_LAYERS[name](seeds[".usda"].decode())
    (tmp_path / "h.usda").write_text(text)
    with pytest.raises(SceneFileError):
        load(tmp_path / "h.usda")


@pytest.mark.parametrize("data", [b"#usda 1.0\n(", b"PXR-USDC" + b"\xff" * 64, b"PXR-USDC", b"#usda 1.0\n" + b"(" * 50_000])
def test_broken_files_raise_scene_file_error(tmp_path, data):
    suffix = ".usda" if data.startswith(b"#") else ".usdc"
    (tmp_path / f"h{suffix}").write_bytes(data)
    with pytest.raises(SceneFileError):
        load(tmp_path / f"h{suffix}")


def test_a_usdz_without_a_layer_raises_scene_file_error(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "h.usdz", "w") as archive:
        archive.writestr("readme.txt", "no layer here")
    with pytest.raises(SceneFileError):
        load(tmp_path / "h.usdz")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), suffix=st.sampled_from([".usdc", ".usdz", ".usda"]))
def test_byte_mutations_raise_only_scene_file_error(tmp_path, seeds, data, suffix):
    raw = bytearray(seeds[suffix])
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    load_only_scene_file_error(tmp_path / f"m{suffix}", bytes(raw[:cut] if data.draw(st.booleans()) else raw))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_number_mutations_in_a_text_layer_raise_only_scene_file_error(tmp_path, seeds, data):
    """Numbers swapped for other numbers keep the layer parseable: counts, degrees and values then lie."""
    import re

    text = seeds[".usda"].decode()
    numbers = list(re.finditer(r"-?\d+(\.\d+)?(e-?\d+)?", text))
    for _ in range(data.draw(st.integers(1, 4))):
        match = data.draw(st.sampled_from(numbers))
        new = data.draw(st.sampled_from(["-1", "0", "1e30", "nan", "inf", "99999999999", "3", "-0.5"]))
        text = text[: match.start()] + new + text[match.end():]
        numbers = list(re.finditer(r"-?\d+(\.\d+)?(e-?\d+)?", text))
    load_only_scene_file_error(tmp_path / "n.usda", text.encode())

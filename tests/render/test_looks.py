"""Render looks: Lyra's own look (3DGUT, white, near/far) from provenance, the CLI flag and the viewer."""

from __future__ import annotations

import math

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.errors import InputDataError
from lyra.model.decoder import packed_to_gaussians, packed_to_sequence
from lyra.render import Camera, render
from lyra.render.framing import trajectory_cameras
from lyra.render.looks import LOOKS, default_look, get_look, look_options
from lyra.render.video import to_uint8
from lyra.scene import LYRA_ORIGIN, Gaussians, GaussianSequence, load, save
from viewer.renders import render_path_video, render_still
from viewer.state import AppState


def packed_scene(n=150, seed=0):
    """Official Lyra layout [N, 14]: xyz, opacity, scale (linear), quat wxyz, rgb; big splats, close together."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=gen) * 0.5
    opacity = torch.rand(n, 1, generator=gen) * 0.6 + 0.3
    scales = torch.rand(n, 3, generator=gen) * torch.tensor([0.25, 0.15, 0.02]) + 0.02
    return torch.cat([means, opacity, scales, torch.randn(n, 4, generator=gen), torch.rand(n, 3, generator=gen)], 1)


def lyra_file(tmp_path, n=150):
    path = tmp_path / "gaussians.ply"  # Lyra's save_gaussians names its torch.save output .ply
    torch.save(packed_scene(n)[None], path)
    return path


def test_lyra_presets_follow_lyra_facts():
    lyra = get_look("lyra")
    assert (lyra.with_ut, lyra.with_eval3d, lyra.background, lyra.near, lyra.far) == (True, True, (1.0, 1.0, 1.0), 0.1, 500.0)
    assert not LOOKS["standard"].with_ut and not LOOKS["standard"].with_eval3d
    assert look_options("lyra", background=(0.0, 0.0, 0.0))["background"] == (0.0, 0.0, 0.0)
    with pytest.raises(InputDataError, match="unknown look"):
        get_look("cinematic")


def test_provenance_marks_lyra_scenes_and_survives_edits_and_saving(tmp_path):
    official = load(lyra_file(tmp_path))
    decoded = packed_to_gaussians(packed_scene(20))
    clip = packed_to_sequence([packed_scene(10, seed=i) for i in range(3)], [0, 1, 2])
    other = Gaussians.from_rgb(torch.zeros(2, 3), torch.randn(2, 4), torch.ones(2, 3) * 0.1, torch.ones(2), torch.rand(2, 3))
    assert official.origin == decoded.origin == clip.origin == LYRA_ORIGIN and other.origin is None
    assert [default_look(s) for s in (official, decoded, clip, other)] == ["lyra", "lyra", "lyra", "standard"]
    assert official[:5].origin == LYRA_ORIGIN and official.to(dtype=torch.float64).origin == LYRA_ORIGIN
    assert Gaussians.cat([official, decoded]).origin == LYRA_ORIGIN and Gaussians.cat([official, other]).origin is None
    assert GaussianSequence([decoded, other]).origin is None
    assert load(save(official, tmp_path / "copy.ply")).origin == LYRA_ORIGIN  # kept in a PLY header comment
    assert load(save(clip, tmp_path / "clip", format="sequence")).origin == LYRA_ORIGIN
    assert load(save(other, tmp_path / "other.ply")).origin is None


def test_cli_look_lyra_renders_3dgut_and_is_the_default_for_lyra_files(tmp_path):
    path = lyra_file(tmp_path)
    outs = {}
    for look in ("lyra", "standard", "auto"):
        outs[look] = tmp_path / f"{look}.png"
        assert main(["render", str(path), "--out", str(outs[look]), "--size", "40x30", "--look", look]) == 0
    images = {k: iio.imread(v).astype(np.int16) for k, v in outs.items()}
    scene = load(path)
    cameras, _ = trajectory_cameras(scene, "orbit", 1, 40, 30, fov_y=math.radians(60.0))
    with torch.no_grad():
        expected = to_uint8(render(scene, cameras[0], with_ut=True, with_eval3d=True, near=0.1, far=500.0,
                                   background=(1.0, 1.0, 1.0)).rgb)
    assert np.abs(images["lyra"] - expected).max() <= 1
    assert np.array_equal(images["auto"], images["lyra"])  # Lyra's files get Lyra's look by default
    assert np.abs(images["lyra"] - images["standard"]).mean() > 2  # and it is not EWA splatting
    assert (images["lyra"][0, 0] == 255).all()  # white background


def test_viewer_renders_offer_the_look_and_default_to_lyra_for_lyra_scenes(tmp_path):
    state = AppState()
    state.add_scene(load(lyra_file(tmp_path)), "lyra scene")
    camera = Camera.look_at((0.0, 0.0, -2.5), (0.0, 0.0, 0.0), width=40, height=30)
    auto = render_still(state, camera).astype(np.int16)
    lyra = render_still(state, camera, look="lyra").astype(np.int16)
    standard = render_still(state, camera, look="standard", background=(0.0, 0.0, 0.0)).astype(np.int16)
    with torch.no_grad():
        expected = to_uint8(render(state.visible_scene(), camera, **look_options("lyra")).rgb)
    assert np.array_equal(auto, lyra) and np.abs(lyra - expected).max() <= 1
    assert np.abs(lyra - standard).mean() > 2 and (standard[0, 0] == 0).all()
    video = render_path_video(state, "orbit", 2, 32, 32, tmp_path / "v.mp4", fps=4, look="lyra")
    assert iio.imread(video).shape[:3] == (2, 32, 32)


def test_render_panel_look_choice_maps_to_render_options():
    from types import SimpleNamespace

    from viewer.panels.render import RenderPanel

    def options(value):
        panel = SimpleNamespace(look=SimpleNamespace(value=value), app=SimpleNamespace(background_rgb=(0, 0, 255)))
        return RenderPanel._look_options(panel)

    assert options("auto") == dict(look=None, background=None)  # the scene's default look, its background
    assert options("lyra") == dict(look="lyra", background=None)  # Lyra's white
    assert options("standard") == dict(look="standard", background=(0.0, 0.0, 1.0))  # the viewer's background

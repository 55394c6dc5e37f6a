"""Server-side renders (Render panel) and SH colour baking for the client's view."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.errors import LyraError
from lyra.render.camera import Camera
from lyra.scene.sh import eval_sh
from viewer import edit_actions as act
from viewer.renders import render_path_video, render_still
from viewer.splat_buffer import RGBA_WORD, pack_rgba_words
from viewer.state import AppState

IDENTITY = (1.0, 0.0, 0.0, 0.0)


@pytest.fixture
def camera():
    return Camera.look_at((0.0, 0.0, -4.0), (0.0, 0.0, 0.0), width=48, height=32)


def test_still_draws_the_scene_over_the_background(static_state, camera):
    white = render_still(static_state, camera, background=(1.0, 1.0, 1.0))
    black = render_still(static_state, camera, background=(0.0, 0.0, 0.0))
    assert white.shape == (32, 48, 3) and white.dtype == np.uint8
    empty = (white == 255).all(-1) & (black == 0).all(-1)  # pixels showing only the background
    assert 0.05 < empty.mean() < 0.95  # the scene covers part of the picture, not all of it


def test_still_leaves_out_soft_deleted_splats(static_state, camera):
    act.select_box(static_state, (0, 0, 0), IDENTITY, (5, 5, 5))
    static_state.delete_selected()
    with pytest.raises(LyraError, match="no visible splats"):
        render_still(static_state, camera)


def test_video_writes_one_mp4_frame_per_path_camera(static_state, tmp_path):
    path = render_path_video(static_state, "orbit", 3, 32, 32, tmp_path / "orbit.mp4", fps=8)
    frames = iio.imread(path)
    assert frames.shape[0] == 3 and frames.shape[1:3] == (32, 32)
    assert [p.name for p in tmp_path.iterdir()] == ["orbit.mp4"]  # no partial or temp files left


def test_sh_bake_colors_splats_for_the_view_position(make_gaussians):
    g = make_gaussians(100, sh_degree=2)
    state = AppState()
    state.add_scene(g, "sh")
    dc_words = state.display_buffer("sh")[:, RGBA_WORD].copy()
    eye = (0.0, 0.0, -3.0)
    state.set_view_position(eye)
    baked = state.display_buffer("sh")[:, RGBA_WORD]
    expected = pack_rgba_words(eval_sh(g.sh, g.means - torch.tensor(eye)), g.opacities)
    np.testing.assert_array_equal(baked, expected)
    assert (baked != dc_words).any()
    state.set_view_position(None)
    np.testing.assert_array_equal(state.display_buffer("sh")[:, RGBA_WORD], dc_words)

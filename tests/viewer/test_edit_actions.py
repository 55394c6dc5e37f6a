"""Pointer selections, attribute filters, transforms and recolouring through the app state."""

from __future__ import annotations

import math

import torch

from lyra.render.camera import Camera
from lyra.scene import Gaussians
from viewer import edit_actions as act
from viewer.state import AppState

IDENTITY = (1.0, 0.0, 0.0, 0.0)


def line_state() -> AppState:
    """Five splats on the z axis at z = 1..5, colours from dark to bright, opacities rising."""
    n = 5
    means = torch.zeros(n, 3)
    means[:, 2] = torch.arange(1, n + 1, dtype=torch.float32)
    g = Gaussians.from_rgb(means, torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1), torch.full((n, 3), 0.05),
                           torch.linspace(0.05, 0.95, n), torch.linspace(0, 1, n)[:, None].repeat(1, 3))
    state = AppState()
    state.add_scene(g, "line")
    return state


def test_click_ray_selects_the_nearest_visible_splat():
    state = line_state()
    assert act.pick_on_ray(state, (0, 0, 0), (0, 0, 1)) == 0
    assert state.current().selected.nonzero().flatten().tolist() == [0]
    state.delete_selected()
    assert act.pick_on_ray(state, (0, 0, 0), (0, 0, 1)) == 1  # the deleted one is skipped


def test_click_ray_that_misses_selects_nothing():
    state = line_state()
    assert act.pick_on_ray(state, (5, 5, 0), (0, 0, 1)) is None
    assert state.selected_count() == 0


def test_screen_rect_selects_splats_projecting_inside_it(static_state):
    camera = Camera.look_at((0.0, 0.0, -4.0), (0.0, 0.0, 0.0), width=200, height=200, fov_y=math.radians(60))
    count = act.select_screen_rect(static_state, camera, (0, 0, 100, 200))  # left half of the image
    means = static_state.current().gaussians.means
    cam = (means - camera.c2w[:3, 3]) @ camera.c2w[:3, :3]
    expected = (cam[:, 0] * camera.intrinsics[0] / cam[:, 2] + camera.intrinsics[2]) <= 100
    assert count == int(expected.sum()) > 0
    assert torch.equal(static_state.current().selected, expected)


def test_attribute_filters_select_by_opacity_scale_distance_and_color():
    state = line_state()
    assert act.select_opacity_below(state, 0.3) == 2  # 0.05, 0.275
    assert act.select_far_from_center(state, 1.5) == 2  # median centre z = 3: splats at z = 1 and 5
    assert act.select_color_near(state, (1.0, 1.0, 1.0), 0.05) == 1
    assert act.select_scale_above(state, 0.04) == 5
    assert act.select_scale_above(state, 0.06) == 0


def test_translate_moves_only_selected_splats_and_undo_moves_them_back():
    state = line_state()
    before = state.current().gaussians.means.clone()
    act.select_opacity_below(state, 0.3)
    act.translate(state, (1.0, 0.0, 0.0))
    after = state.current().gaussians.means
    assert torch.allclose(after[:2, 0], before[:2, 0] + 1) and torch.equal(after[2:], before[2:])
    state.undo()
    assert torch.equal(state.current().gaussians.means, before)


def test_scale_about_the_selection_centroid_spreads_the_selection():
    state = line_state()
    act.select_far_from_center(state, 1.5)  # z = 1 and z = 5, centroid z = 3
    act.scale(state, 2.0)
    z = state.current().gaussians.means[:, 2]
    assert torch.allclose(z, torch.tensor([-1.0, 2, 3, 4, 7]))


def test_rotate_half_turn_about_a_pivot_mirrors_positions():
    state = line_state()
    act.select_opacity_below(state, 0.3)  # z = 1, 2
    act.rotate(state, (0.0, 1.0, 0.0, 0.0), pivot=(0.0, 0.0, 3.0))  # 180 degrees about x through z = 3
    z = state.current().gaussians.means[:, 2]
    assert torch.allclose(z, torch.tensor([5.0, 4, 3, 4, 5]), atol=1e-6)


def test_recolor_ops_change_only_the_selected_colors():
    state = line_state()
    base = state.current().gaussians.rgb().clone()
    act.select_opacity_below(state, 0.3)
    act.tint(state, (1.0, 0.0, 0.0), 1.0)
    rgb = state.current().gaussians.rgb()
    assert torch.allclose(rgb[:2], torch.tensor([[1.0, 0, 0]] * 2), atol=1e-5)
    assert torch.allclose(rgb[2:], base[2:])
    act.brightness(state, 0.5)
    assert torch.allclose(state.current().gaussians.rgb()[:2, 0], torch.tensor([0.5, 0.5]), atol=1e-5)
    act.saturation(state, 0.0)  # grey: all channels equal
    grey = state.current().gaussians.rgb()[:2]
    assert torch.allclose(grey, grey[:, :1].expand(-1, 3), atol=1e-5)
    assert [label.split()[0] for label, _ in state.history.labels()] == ["Tint", "Brightness", "Saturation"]


def test_remove_floaters_deletes_an_isolated_splat(make_gaussians):
    g = make_gaussians(300)
    g.means[0] = torch.tensor([40.0, 40.0, 40.0])
    state = AppState()
    state.add_scene(g, "with-floater")
    removed = act.remove_floaters(state, k=8, std_ratio=3.0)
    assert removed >= 1 and bool(state.current().deleted[0])
    state.undo()
    assert not state.current().deleted.any()

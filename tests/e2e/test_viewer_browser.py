"""The viewer in a real browser: splats drawn, time scrubbing, box delete + undo, export.

Tests in this module share one browser page and run in file order (each
leaves the demo viewer as it found it, except the last which exports).
"""

from __future__ import annotations

import time

import imageio.v3 as iio
import numpy as np
import pytest

from lyra.scene import load
from viewer import edit_actions as act

pytestmark = pytest.mark.e2e
IDENTITY = (1.0, 0.0, 0.0, 0.0)


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def select_central_box(viewer) -> int:
    """Select splats within 0.6 of the scene centre in x and z (the objects on the stage), all heights."""
    center = viewer.framing().center.tolist()
    return act.select_box(viewer.state, center, IDENTITY, (0.6, 5.0, 0.6))


def test_demo_scene_draws_splat_pixels(viewer, screen):
    image = screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, timeout=90, what="splats on screen")
    assert screen.splat_fraction(image) > 0.05


def test_time_slider_in_the_page_changes_the_frame_and_the_picture(viewer, page, screen):
    before = screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, what="frame 0 drawn")
    slider = page.get_by_role("slider").first  # the Time panel's frame slider
    slider.focus()
    slider.press("End")
    last = viewer.state.num_frames - 1
    screen.wait_for(lambda: viewer.state.frame == last, timeout=30, what=f"the server to show frame {last}")
    after = screen.wait_for_picture(lambda im: mean_difference(im, before) > 1.0, what="a different picture")
    assert mean_difference(after, before) > 1.0
    viewer.panel("time").show_frame(0)


def test_box_delete_removes_splats_from_the_picture_and_undo_brings_them_back(viewer, page, screen):
    full = screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, what="the scene")
    full_fraction = screen.splat_fraction(full)
    assert select_central_box(viewer) > 0
    viewer.action("Delete", viewer.state.delete_selected)
    pruned = screen.wait_for_picture(lambda im: screen.splat_fraction(im) < 0.8 * full_fraction, what="fewer splat pixels")
    assert screen.splat_fraction(pruned) < 0.8 * full_fraction

    page.get_by_role("tab", name="Edit").click()
    page.get_by_role("button", name="Undo").click()  # through the page's own GUI
    screen.wait_for(lambda: viewer.state.history.labels()[-1][1] is False, timeout=30, what="the server to undo")
    restored = screen.wait_for_picture(
        lambda im: abs(screen.splat_fraction(im) - full_fraction) < 0.05 * full_fraction, what="the splats back")
    assert abs(screen.splat_fraction(restored) - full_fraction) < 0.05 * full_fraction
    viewer.action("Clear selection", viewer.state.clear_selection)


def test_rectangle_dragged_in_the_page_selects_and_highlights_splats(viewer, page, screen):
    before = screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, what="the scene")
    page.get_by_role("tab", name="Edit").click()
    page.get_by_role("button", name="Drag a rectangle").click()
    screen.wait_for(lambda: bool(viewer.server.scene._scene_pointer_cb), timeout=30, what="rect-select armed")
    time.sleep(1.0)  # the armed gesture reaches the page over the websocket
    page.mouse.move(150, 250)
    page.mouse.down()
    page.mouse.move(450, 480, steps=10)
    page.mouse.up()
    screen.wait_for(lambda: viewer.state.selected_count() > 0, timeout=30, what="a rectangle selection on the server")
    magenta = lambda im: ((im[..., 0] > 200) & (im[..., 1] < 120) & (im[..., 2] > 120)).mean()  # noqa: E731
    highlighted = screen.wait_for_picture(lambda im: magenta(im) > magenta(before) + 0.002, what="highlighted splats")
    assert magenta(highlighted) > magenta(before)
    viewer.action("Clear selection", viewer.state.clear_selection)


def test_render_mp4_of_the_4d_demo_from_the_render_panel_changes_over_time(viewer, page, screen):
    panel = viewer.panel("render")
    panel.path.value = "none"  # a still camera: what changes between frames is time
    panel.num_frames.value = 8
    panel.height.value = 64
    panel.video_name.value = "e2e_4d.mp4"
    page.get_by_role("tab", name="Render").click()
    page.get_by_role("button", name="Render MP4").click()
    target = viewer.output_dir / "e2e_4d.mp4"
    screen.wait_for(target.exists, timeout=120, what=str(target))
    screen.wait_for(lambda: all(j.status != "running" for j in viewer.jobs), timeout=60, what="the render job")
    frames = iio.imread(target)
    assert frames.shape[0] == 8
    assert mean_difference(frames[0], frames[-1]) > 1.0


def test_export_button_writes_a_file_that_loads_back_to_the_edited_content(viewer, page, screen):
    select_central_box(viewer)
    viewer.action("Delete", viewer.state.delete_selected)
    viewer.panel("export").format.value = "sequence"
    viewer.panel("export").name.value = "e2e_export"
    page.get_by_role("tab", name="Export").click()
    page.get_by_role("button", name="Save on server").click()
    target = viewer.output_dir / "e2e_export"
    screen.wait_for(lambda: (target / "manifest.json").exists() or any(target.glob("*.ply")), timeout=60, what=str(target))
    screen.wait_for(lambda: all(j.status != "running" for j in viewer.jobs), timeout=60, what="the export job")
    loaded, expected = load(target), viewer.state.edited_scene()
    assert len(loaded) == len(expected)
    assert all(a.equal(b, atol=1e-5) for a, b in zip(loaded.frames, expected.frames, strict=True))
    assert sum(len(f) for f in loaded.frames) < sum(len(f.gaussians) for f in viewer.state.layer().frames)

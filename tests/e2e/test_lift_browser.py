"""A scene lifted from a real photo shows in the browser's live view (issue: the canvas stayed white).

The photo and its depth are Middlebury 2014 "Motorcycle" from scikit-image's wheel (the left view,
z-depth from the ground-truth disparity), cropped to 400 x 500 so that the automatic lift resolution
(``pixels_per_splat``: 2 x 2 blocks) keeps it at 50k splats. The viewer's WebGL splat shader drops
splats whose on-screen footprint is below about half a pixel, so the previous one-pixel, 0.25-px
lift was invisible at the camera Fit camera chooses. Judged on the live canvas only: the server's
still renders are never asked for and the background stays plain.
"""

from __future__ import annotations

import math

import imageio.v3 as iio
import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FOCAL, BASELINE, DOFFS = 994.978, 0.193001, 31.086  # skimage's docstring (Middlebury's, divided by 4)
CROP = slice(170, 570)  # 400 columns around the motorcycle
FOV_X = 23  # degrees: 2 atan(200 / 994.978) = 22.7 for the 400-pixel-wide crop


@pytest.fixture(scope="module")
def motorcycle_files(tmp_path_factory):
    from skimage.data import stereo_motorcycle

    left, _, disparity = stereo_motorcycle()
    depth = FOCAL * BASELINE / (disparity + DOFFS)
    depth[~np.isfinite(disparity)] = np.nan
    folder = tmp_path_factory.mktemp("lift-input")
    iio.imwrite(folder / "motorcycle.png", np.ascontiguousarray(left[:, CROP]))
    np.save(folder / "motorcycle_depth.npy", np.ascontiguousarray(depth[:, CROP]).astype(np.float32))
    return folder / "motorcycle.png", folder / "motorcycle_depth.npy", float(np.isfinite(depth[:, CROP]).mean())


def test_a_scene_lifted_from_a_photo_covers_the_live_canvas(viewer, page, screen, motorcycle_files):
    image_path, depth_path, depth_share = motorcycle_files
    screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, timeout=120, what="the demo scene drawn")
    for name in viewer.state.layer_names():  # hide the demo layers: the canvas then shows only the lift
        viewer.action("Hide", lambda name=name: viewer.state.set_visible(name, False))
    screen.wait_for_picture(lambda im: screen.splat_fraction(im) < 0.01, timeout=120, what="an empty view")

    page.get_by_role("tab", name="Generate").click()
    panel = viewer.panel("generate")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload image or video").click()
    chooser.value.set_files(str(image_path))
    screen.wait_for(lambda: panel._input is not None, timeout=120, what="the image upload on the server")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload depth (optional)").click()
    chooser.value.set_files(str(depth_path))
    screen.wait_for(lambda: panel._depth is not None, timeout=120, what="the depth upload on the server")
    panel.fov.value = FOV_X

    page.get_by_role("button", name="Generate", exact=True).click()
    layer = "generated-motorcycle"
    screen.wait_for(lambda: layer in viewer.state.layer_names(), timeout=300, what="the generated layer")
    splats = viewer.state.layer_info(layer).splats
    assert 40_000 <= splats <= 50_000  # 200 x 250 blocks of 2 x 2 pixels, less the blocks without depth
    viewer.fit_camera()

    # Fit camera puts the camera at the input camera; the viewer's wider field of view shows the photo
    # smaller than its pixels (75 degrees against the photo's 28: ~0.46 screen px per photo pixel, so
    # the previous one-pixel lift's 0.25 px discs were ~0.1 px on screen and all dropped). Half of
    # the area the photo's pixels with depth take on screen must be covered.
    fov = next(iter(viewer.server.get_clients().values())).camera.fov
    scale = page.viewport_size["height"] / 2 / math.tan(fov / 2) / FOCAL  # screen px per photo px
    box = math.prod(screen.pixels().shape[:2])  # the scene area judged
    expected = 0.5 * depth_share * (500 * scale) * (400 * scale) / box
    assert expected > 0.03
    shown = screen.wait_for_picture(lambda im: screen.splat_fraction(im) > expected, timeout=300,
                                    what=f"the lifted photo covering over {expected:.1%} of the live canvas")
    assert screen.splat_fraction(shown) > expected

"""Generate in a real browser: upload an image and its depth file, Generate with the lift backend,
and see the new layer's splats on screen (16k splats: a 100x160 picture)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

pytestmark = pytest.mark.e2e
GREEN = (20, 200, 40)
MAGENTA = (220, 30, 200)


def green_fraction(image: np.ndarray) -> float:
    """Share of the scene area tinted with the test picture's green (the demo scenes have almost none).

    The lift sizes splats to the input's pixels; the browser shows the 160-pixel-wide picture ~3x
    larger, so each splat is a dot over white and the green is pale: judged by hue, not brightness.
    """
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return float(((g - r > 50) & (g - b > 30)).mean())


@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generate-input")
    image = np.zeros((100, 160, 3), np.uint8)
    blocks = (np.arange(100)[:, None] // 20 + np.arange(160)[None, :] // 20) % 2 == 0
    image[blocks], image[~blocks] = GREEN, MAGENTA
    iio.imwrite(folder / "photo.png", image)
    np.save(folder / "photo_depth.npy", np.full((100, 160), 2.0, np.float32))
    return folder / "photo.png", folder / "photo_depth.npy"


def test_upload_image_and_depth_then_generate_shows_the_new_layer(viewer, page, screen, picture):
    image_path, depth_path = picture
    screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, timeout=90, what="the demo scene drawn")
    before = viewer.state.layer_names()
    for name in before:  # hide the demo so the picture shows only what Generate adds (nothing is removed)
        viewer.action("Hide", lambda name=name: viewer.state.set_visible(name, False))
    screen.wait_for_picture(lambda im: screen.splat_fraction(im) < 0.01, what="an empty view")

    page.get_by_role("tab", name="Generate").click()
    panel = viewer.panel("generate")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload image or video").click()
    chooser.value.set_files(str(image_path))
    screen.wait_for(lambda: panel._input is not None, timeout=60, what="the image upload on the server")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Upload depth (optional)").click()
    chooser.value.set_files(str(depth_path))
    screen.wait_for(lambda: panel._depth is not None, timeout=60, what="the depth upload on the server")

    page.get_by_role("button", name="Generate", exact=True).click()
    screen.wait_for(lambda: "generated-photo" in viewer.state.layer_names(), timeout=120, what="the generated layer")
    assert viewer.state.layer_info("generated-photo").splats == 100 * 160
    assert viewer.state.layer_names()[: len(before)] == before  # everything open before is still there
    shown = screen.wait_for_picture(lambda im: green_fraction(im) > 0.05, timeout=120, what="the new layer's splats")
    assert green_fraction(shown) > 0.05 and screen.splat_fraction(shown) > 0.2

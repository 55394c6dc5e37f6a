"""The share page in Chromium with no network: it draws the scene, and a 4D page plays."""

from __future__ import annotations

import pytest
import torch

from lyra.cli import main
from lyra.scene import GaussianSequence, save
from lyra.scene.procedural import sphere

pytestmark = pytest.mark.e2e
RED = lambda p: torch.tensor([0.9, 0.1, 0.1]).expand_as(p)  # noqa: E731


def test_share_page_shows_the_scene_offline(tmp_path, offline_page):
    save(sphere(torch.zeros(3), 1.0, 4000, RED), tmp_path / "sphere.ply")
    out = tmp_path / "out" / "sphere.html"
    assert main(["share", str(tmp_path / "sphere.ply"), "--out", str(out), "--no-progress"]) == 0
    assert [p.name for p in out.parent.iterdir()] == ["sphere.html"]
    page = offline_page.page
    page.goto(out.as_uri())
    page.wait_for_selector("canvas")
    screen = offline_page.screen()
    image = screen.wait_for_picture(lambda im: screen.splat_fraction(im) > 0.05, timeout=120, what="the sphere drawn")
    red = (image[..., 0].astype(int) > 150) & (image[..., 1].astype(int) < 100)
    assert red.mean() > 0.05  # the sphere's colour, not only some non-white pixels
    assert offline_page.refused == []  # the page asked for nothing beyond itself


@pytest.mark.slow
def test_share_page_of_a_4d_scene_plays_its_frames(tmp_path, offline_page):
    # A sphere that grows from frame to frame, one frame a second: playing shows small and large discs.
    clip = GaussianSequence([sphere(torch.zeros(3), r, 1500, RED) for r in (0.5, 0.8, 1.1)], fps=1)
    save(clip, tmp_path / "clip")
    out = tmp_path / "clip.html"
    assert main(["share", str(tmp_path / "clip"), "--out", str(out), "--no-progress"]) == 0
    page = offline_page.page
    page.goto(out.as_uri())
    page.wait_for_selector("canvas")
    screen = offline_page.screen()
    seen = []

    def grew():
        fraction = screen.splat_fraction(screen.pixels())
        if fraction > 0.005:  # a frame is drawn (not the blank page before the recording loads)
            seen.append(fraction)
        return len(seen) >= 2 and max(seen) > 2.5 * min(seen)

    screen.wait_for(grew, timeout=180, interval=0.3, what=f"frames of different sizes (saw {seen})")
    assert offline_page.refused == []

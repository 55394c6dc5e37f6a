"""Browser fixtures: Debian's chromium driven by Playwright, the viewer served in-process on a free port.

viser's websocket lives in a Web Worker, so the tests wait on pixels (polled
screenshots) or on server state, never on page websocket events. Software
WebGL (SwiftShader) is slow: small scenes, generous timeouts.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless=new", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
VIEWPORT = {"width": 1000, "height": 700}
# The scene area left of the control panel and below the "software WebGL" notification.
SCENE_BOX = (slice(170, 690), slice(0, 640))
WHITE = np.array([255, 255, 255])


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium for the browser tests")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests need it")


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    from scenes.build_demo import ensure_demo_scenes

    cache = Path(os.environ.get("LYRA_STUDIO_CACHE", tmp_path_factory.mktemp("demo-cache")))
    ensure_demo_scenes(cache)
    return cache


@pytest.fixture(scope="module")
def viewer(demo_cache, tmp_path_factory):
    """The demo viewer (launch.py's start_viewer) on 127.0.0.1 and a free port; stopped after the module."""
    require_chromium()
    spec = importlib.util.spec_from_file_location("launch", Path(__file__).resolve().parents[2] / "launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)

    out = tmp_path_factory.mktemp("exports")
    app = launch.start_viewer(launch.parse_args(["--port", "0", "--cache-dir", str(demo_cache), "--output-dir", str(out)]))
    yield app
    app.stop()
    app.server.stop()


@pytest.fixture(scope="module")
def page(viewer):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)
            page.goto(f"http://127.0.0.1:{viewer.server.get_port()}")
            page.wait_for_selector("canvas")
            yield page
        finally:
            browser.close()


class Screen:
    """Screenshot polling for one page (helpers live here: importlib mode cannot import conftest)."""

    def __init__(self, page):
        self.page = page

    def pixels(self) -> np.ndarray:
        """The scene area of a screenshot, ``uint8 [H, W, 3]``."""
        import imageio.v3 as iio

        image = iio.imread(self.page.screenshot(), extension=".png")[..., :3]
        return image[SCENE_BOX]

    @staticmethod
    def splat_fraction(image: np.ndarray) -> float:
        """Share of pixels visibly different from the white background."""
        return float((np.abs(image.astype(int) - WHITE).sum(-1) > 30).mean())

    @staticmethod
    def wait_for(predicate, timeout: float = 60.0, interval: float = 0.5, what: str = "condition"):
        """Poll ``predicate()`` until it returns something other than None/False; fail with ``what`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value is not None and value is not False:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def wait_for_picture(self, accept, timeout: float = 60.0, what: str = "the picture") -> np.ndarray:
        """Poll screenshots until ``accept(image)`` holds twice in a row (renders settle over a few frames)."""
        last = {"ok": False}

        def check():
            image = self.pixels()
            ok = bool(accept(image))
            stable, last["ok"] = ok and last["ok"], ok
            return image if stable else None

        return self.wait_for(check, timeout, what=what)


@pytest.fixture(scope="module")
def screen(page) -> Screen:
    return Screen(page)


class OfflinePage:
    """A Chromium page that may load ``file:``, ``data:`` and ``blob:`` URLs only; every other request is
    aborted and listed in ``refused`` (the context is offline too)."""

    LOCAL = ("file:", "data:", "blob:")

    def __init__(self, context):
        self.refused: list[str] = []
        context.route("**/*", self._route)
        self.page = context.new_page()
        self.page.set_default_timeout(60_000)

    def _route(self, route) -> None:
        if route.request.url.startswith(self.LOCAL):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def screen(self) -> Screen:
        return Screen(self.page)


@pytest.fixture
def offline_page():
    """An :class:`OfflinePage` in a fresh, offline browser context (closed after the test)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield OfflinePage(browser.new_context(viewport=VIEWPORT, offline=True))
        finally:
            browser.close()

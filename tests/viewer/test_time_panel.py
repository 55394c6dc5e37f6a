"""Issue 20 §3.4: one bad lazy frame neither ends playback nor shows up as a traceback."""

from __future__ import annotations

import time

import pytest

from lyra.scene import GaussianSequence, load, save

from .conftest import random_gaussians


@pytest.fixture
def clip_with_a_bad_frame(tmp_path):
    save(GaussianSequence([random_gaussians(100 + 10 * i, seed=i) for i in range(5)], fps=5), tmp_path / "clip")
    bad = tmp_path / "clip" / "frame_00002.ply"
    header_end = bad.read_bytes().index(b"end_header\n") + len(b"end_header\n")
    clip = load(tmp_path / "clip")  # lazy: the headers are read now, a frame's splats only when it is shown
    bad.write_bytes(bad.read_bytes()[: header_end + 100])  # then frame 2 loses its splats on the disk
    return clip


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_playback_skips_a_bad_frame_reports_it_once_and_keeps_playing(app, clip_with_a_bad_frame):
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append((title, body, error))
    app.add_scene_layer(clip_with_a_bad_frame, "clip")
    panel = app.panel("time")
    shown = []
    show_frame = panel.show_frame
    panel.show_frame = lambda i: shown.append(show_frame(i))  # what the player managed to show
    panel.fps.value = 30
    panel.play.value = True
    try:
        # Two laps over the clip: 0 -> 1 -> (2 skipped) -> 3 -> 4 -> 0 -> 1 -> 3 ...
        assert wait_for(lambda: shown.count(3) >= 2 and shown.count(4) >= 2), shown
    finally:
        panel.play.value = False
    assert 2 not in shown
    assert panel._player.is_alive()
    bad = [n for n in notes if n[0] == "Frame 2 skipped"]
    assert len(bad) == 1 and bad[0][2] is True  # once, as an error notification
    assert wait_for(lambda: not app.state.display_policy().is_playing)
    assert app.state.time_info().frame != 2


class _Event:
    def __init__(self, client):
        self.client = client


def test_the_slider_on_a_bad_frame_is_a_notification_and_the_shown_frame_stays(app, clip_with_a_bad_frame, capsys):
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append((title, body, error))
    app.add_scene_layer(clip_with_a_bad_frame, "clip")
    panel = app.panel("time")
    panel.show_frame(1)
    panel.slider.value = 2
    panel._on_slider(_Event(client=object()))  # as if a browser moved it
    shown = [n for n in notes if n[0].startswith("Show frame")]
    assert [n[0] for n in shown] == ["Show frame 2 failed"] and shown[0][2] is True
    assert "frame_00002.ply" in shown[0][1]
    assert "internal error" not in shown[0][1]
    assert "Traceback" not in capsys.readouterr().err
    assert app.state.time_info().frame == 1  # the frame that showed stays
    panel.show_frame(3)  # and the rest of the clip still shows
    assert app.state.time_info().frame == 3

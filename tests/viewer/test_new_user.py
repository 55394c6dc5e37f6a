"""What a new user tripped over (issue 8, item 6), each as a behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.scene import GaussianSequence, load, save
from viewer import edit_actions as act
from viewer.panels.status import status_line
from viewer.renders import render_path_video

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = (1.0, 0.0, 0.0, 0.0)


def _frame_difference(frames: np.ndarray) -> float:
    return float(np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean())


def test_render_mp4_of_a_4d_layer_plays_the_clip_by_default_and_can_freeze_it(sequence_state, tmp_path):
    # A still camera ("none"): any change between frames comes from time.
    moving = render_path_video(sequence_state, "none", 4, 32, 32, tmp_path / "moving.mp4", fps=4)
    frozen = render_path_video(sequence_state, "none", 4, 32, 32, tmp_path / "frozen.mp4", fps=4, freeze_time=True)
    assert _frame_difference(iio.imread(moving)) > 2.0
    assert _frame_difference(iio.imread(frozen)) < 0.5


def test_viewer_render_path_is_the_cli_path(make_gaussians, tmp_path):
    from viewer.state import AppState

    scene = make_gaussians(300)
    scene.means[:, 2] += 3.0  # in front of the first camera, as Lyra scenes are
    path = save(scene, tmp_path / "scene.ply")
    assert main(["render", str(path), "--trajectory", "left", "--frames", "5", "--size", "48x32",
                 "--out", str(tmp_path / "cli.mp4"), "--no-progress"]) == 0
    state = AppState()
    state.add_scene(load(path), "scene")
    render_path_video(state, "left", 5, 48, 32, tmp_path / "viewer.mp4")
    np.testing.assert_array_equal(iio.imread(tmp_path / "viewer.mp4"), iio.imread(tmp_path / "cli.mp4"))


def test_exporting_a_4d_layer_defaults_to_a_sequence_and_a_single_frame_is_named_and_announced(app, make_gaussians):
    clip = GaussianSequence([make_gaussians(30 + i, seed=i) for i in range(4)], fps=8)
    app.state.add_scene(clip, "clip")
    app.refresh()
    panel = app.panel("export")
    assert panel.format.value == "sequence"

    app.state.set_frame(2)
    panel.format.value = "ply"
    panel.name.value = "shot"
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append((title, body))
    panel._save(SimpleNamespace(client=None))
    assert app.jobs[-1].wait(30) and app.jobs[-1].status == "done"
    written = app.output_dir / "shot_frame0002.ply"
    assert len(load(written)) == len(clip.frames[2])
    assert any("frame 3 of 4 only" in body for _, body in notes)

    app.state.add_scene(make_gaussians(20), "still")
    panel.layer.value = "still"
    panel.refresh()
    assert panel.format.value == "ply"


def test_open_replaces_the_scene_or_adds_a_layer(app, make_gaussians, tmp_path):
    first = save(make_gaussians(10), tmp_path / "first.ply")
    second = save(make_gaussians(20, seed=1), tmp_path / "second.ply")
    app.open_scene(first)
    app.open_scene(second, replace=False)
    assert app.state.layer_names() == ["first", "second"]
    app.open_scene(first, replace=True)
    assert app.state.layer_names() == ["first"]
    assert app.panel("scene").replace  # the Scene panel's default: replace


def test_a_hidden_layer_is_named_in_the_status_line_and_the_scene_info(app, make_gaussians):
    hidden = app.state.add_scene(make_gaussians(10), "static demo")
    app.state.add_scene(make_gaussians(10, seed=1), "dynamic demo")
    app.state.set_visible(hidden, False)
    app.refresh()
    assert "hidden: static demo" in status_line(app.state)
    assert "Hidden: static demo" in app.panel("scene").info.content


def test_status_line_counts_the_selection_in_this_frame_and_in_all_frames(sequence_state):
    act.select_box(sequence_state, (0, 0, 0), IDENTITY, (0.5, 0.5, 0.5))
    counts = sequence_state.counts()
    per_frame = [int(f.selected.sum()) for f in sequence_state.layer().frames]
    assert counts["selected"] == per_frame[0] and counts["selected_all"] == sum(per_frame)
    assert f"{per_frame[0]:,} selected in this frame, {sum(per_frame):,} in all frames" in status_line(sequence_state)


@pytest.mark.slow
@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("command", [["info", "--json", "SCENE"], ["info", "SCENE"], ["models", "check"], ["--help"]])
def test_cli_output_into_a_closed_pipe_ends_quietly(tmp_path, make_gaussians, command, buffered):
    """`lyra info --json | head` with head already gone: no traceback, no "Exception ignored", status 0.

    The pipe's read end is closed before lyra starts, so every write fails whatever the timing (the old
    test closed it after the start and passed or failed with the scheduler). Buffered stdout (no
    PYTHONUNBUFFERED, as in CI) fails only at the final flush; unbuffered fails at the print.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    path = save(make_gaussians(10), tmp_path / "s.ply")
    argv = [str(path) if word == "SCENE" else word for word in command]
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "lyra", *argv], stdout=write_end, stderr=subprocess.PIPE,
                              cwd=ROOT, env=env, timeout=120)
    finally:
        os.close(write_end)
    stderr = proc.stderr.decode()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr and "Exception ignored" not in stderr
    assert proc.returncode == 0


def test_exports_folder_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", "exports/scene.ply"], cwd=ROOT)
    assert result.returncode == 0


def test_error_notifications_close_by_themselves(app):
    seen = []
    client = SimpleNamespace(add_notification=lambda title, body, **kw: seen.append(kw))
    app.notify("Open failed", "no such file", client, error=True)
    app.notify("Exported", "ok", client)
    assert all(kw["auto_close_seconds"] and kw["auto_close_seconds"] > 0 for kw in seen)
    assert seen[0]["color"] == "red"


@pytest.mark.slow
def test_viewer_benchmark_prints_only_json_on_stdout():
    import json

    out = subprocess.run([sys.executable, "bench/viewer.py", "--splats", "2000", "--frame-splats", "2000",
                          "--frames", "2", "--repeats", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["frame_switch"]["frames"] == 2
    assert "viser" in out.stderr or "http" in out.stderr.lower()  # the banner still shows, on stderr


def test_each_job_has_its_own_row_and_cancel_stops_only_that_job(app):
    release = threading.Event()

    def work(job):
        while not release.is_set():
            job(0.5, "working")  # raises Cancelled once this job is cancelled
            release.wait(0.01)
        return "finished"

    first, second = app.start_job("First", work), app.start_job("Second", work)
    rows = app.panel("jobs").rows
    assert set(rows) == {first, second}
    for press in rows[first].cancel._impl.update_cb:  # what viser runs when that row's Cancel is clicked
        press(SimpleNamespace(client=None))
    assert first.wait(10) and first.status == "cancelled"
    assert second.status == "running" and set(rows) == {second}
    release.set()
    assert second.wait(10) and second.status == "done" and second.result == "finished"
    assert rows == {}


def test_a_user_error_in_a_job_is_a_message_and_a_bug_is_marked_internal(app):
    from lyra.errors import EditError

    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append(body)

    def user_error(job):
        raise EditError("nothing is selected")

    def bug(job):
        return {}["missing"]

    app.start_job("A", user_error).wait(10)
    app.start_job("B", bug).wait(10)
    assert notes[0] == "nothing is selected"
    assert notes[1].startswith("internal error: KeyError")


def test_default_selection_volumes_sit_on_the_framed_scene(app, make_gaussians):
    scene = make_gaussians(200)
    scene.means[:] = scene.means * 0.5 + torch.tensor([3.0, 0.0, 0.0])
    app.state.add_scene(scene, "off centre")
    panel = app.panel("edit")
    panel._show_gizmo(True)
    framing = app.framing()
    np.testing.assert_allclose(panel.gizmo.position, framing.center.numpy(), atol=1e-5)
    assert panel.box_size.value[0] == pytest.approx(framing.radius * 0.5)
    assert panel.radius.value == pytest.approx(framing.radius * 0.25)

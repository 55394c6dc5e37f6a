"""Finding 2 and 3 (viewer): Open-by-path is confined, runs as a job with a deadline, and shutdown completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import lyra.scene
from lyra.scene import save
from tests.security.conftest import tiny_gaussians
from viewer.app import ViewerApp

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_app(server, tmp_path):
    apps = []

    def make(**kwargs):
        app = ViewerApp(server, output_dir=tmp_path / "out", **kwargs)
        app.notes = []
        app.notify = lambda title, body, client=None, error=False: app.notes.append(f"{title}: {body}")
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.stop()
    server.gui.reset()
    server.scene.reset()


@pytest.fixture
def folders(tmp_path):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    save(tiny_gaussians(8), data / "inside.ply")
    save(tiny_gaussians(8), elsewhere / "secret.ply")
    (data / "link.ply").symlink_to(elsewhere / "secret.ply")
    return data, elsewhere


def _finish(job):
    assert job is not None
    assert job.wait(20)
    return job


def test_open_path_is_confined_to_the_served_folders(make_app, folders):
    data, elsewhere = folders
    app = make_app(data_dirs=[data])
    assert _finish(app.open_path(str(data / "inside.ply"))).status == "done"
    assert list(app.state.layers) == ["inside"]
    refusals = []
    for raw in (elsewhere / "secret.ply", elsewhere / "missing.ply", data / "link.ply", f"{data}/../elsewhere/secret.ply",
                "/etc/shadow", "/definitely/not/here"):
        app.notes.clear()
        assert app.open_path(str(raw)) is None
        assert len(app.notes) == 1 and "outside" in app.notes[0]
        refusals.append(app.notes[0].replace(str(raw), "PATH"))
    assert len(set(refusals)) == 1  # the same words whether or not the path exists
    assert list(app.state.layers) == ["inside"]


def test_open_anywhere_lifts_the_confinement(make_app, folders):
    _, elsewhere = folders
    app = make_app(open_anywhere=True)
    assert _finish(app.open_path(str(elsewhere / "secret.ply"))).status == "done"


def test_stuck_loads_run_as_jobs_and_time_out_without_holding_callback_threads(make_app, folders, monkeypatch):
    data, _ = folders
    release = threading.Event()
    real_load = lyra.scene.load

    def stuck_load(path, **kwargs):
        release.wait(30)
        return real_load(path, **kwargs)

    monkeypatch.setattr(lyra.scene, "load", stuck_load)
    app = make_app(data_dirs=[data], open_timeout_s=0.5)
    start = time.monotonic()
    jobs = [app.open_path(str(data / "inside.ply")) for _ in range(32)]
    assert time.monotonic() - start < 2.0  # the callback returns at once: no thread waits on the read
    for job in jobs:
        assert _finish(job).status == "failed" and "within 0.5 s" in job.error
    release.set()
    time.sleep(0.3)
    assert app.state.layers == {}  # loads that finished after their deadline are dropped


SHUTDOWN_SCRIPT = """
import os, signal, sys, threading, time
sys.path.insert(0, {root!r})
import lyra.scene
import launch

def stuck(path, **kwargs):
    threading.Event().wait()  # a read that never returns (a hung mount)

args = launch.parse_args([{scene!r}, "--port", "0", "--output-dir", {out!r}, "--open-timeout", "600"])
real_start = launch.start_viewer

def start_and_jam(args):
    app = real_start(args)
    lyra.scene.load = stuck
    pool = app.server._thread_executor
    for _ in range(40):  # every callback thread of viser's pool stuck in a load, plus open-path jobs
        pool.submit(stuck, None)
        app.open_path({scene!r})
    threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    return app

launch.start_viewer = start_and_jam
sys.exit(launch.main([{scene!r}, "--port", "0", "--output-dir", {out!r}]))
"""


def test_sigterm_stops_the_viewer_even_with_every_callback_thread_stuck(tmp_path):
    scene = save(tiny_gaussians(8), tmp_path / "scene.ply")
    script = SHUTDOWN_SCRIPT.format(root=str(ROOT), scene=str(scene), out=str(tmp_path / "out"))
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out
    assert "Lyra Studio stopped." in out and "stuck thread" in out


def test_generate_panel_server_paths_are_confined_too(make_app, folders):
    from types import SimpleNamespace

    data, elsewhere = folders
    app = make_app(data_dirs=[data])
    panel = app.panel("generate")
    for field in ("path", "depth_path", "custom_path"):
        for name in ("path", "depth_path", "custom_path"):
            getattr(panel, name).value = ""
        panel.path.value = str(data / "inside.ply")  # an allowed input, so only ``field`` can be refused
        getattr(panel, field).value = str(elsewhere / "secret.ply")
        app.notes.clear()
        panel._on_generate(SimpleNamespace(client=None))
        assert any("outside" in note for note in app.notes), (field, app.notes)
        assert not app.jobs or not any(job.running for job in app.jobs)

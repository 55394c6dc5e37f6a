"""launch.py as a user runs it: no TTY, prints its URL, binds 127.0.0.1, stops cleanly on SIGTERM."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from lyra.scene import save

ROOT = Path(__file__).resolve().parents[2]


def test_launch_serves_a_scene_on_localhost_and_exits_0_on_sigterm(tmp_path, make_gaussians):
    scene = save(make_gaussians(100), tmp_path / "tiny.ply")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), str(scene), "--port", "0", "--output-dir", str(tmp_path / "out")],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Loaded:") or not line:
                break
        url = next(m.group(0) for line in lines if (m := re.search(r"http://localhost:\d+", line)))
        assert "tiny" in lines[-1]
        port = int(url.rsplit(":", 1)[1])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=10) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "stopped" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_launch_binds_loopback_by_default():
    spec = importlib.util.spec_from_file_location("launch", ROOT / "launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    args = launch.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8080)


def test_decode_budget_flags_set_the_library_limits(tmp_path, make_gaussians):
    import pytest

    from lyra import limits
    from lyra.errors import DecodeBudgetError
    from lyra.scene import load

    spec = importlib.util.spec_from_file_location("launch", ROOT / "launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    for bad in (["--max-splats", "0"], ["--max-decoded-mb", "-5"], ["--max-upload-total-mb", "0"]):
        with pytest.raises(SystemExit):
            launch.parse_args(bad)
    scene = save(make_gaussians(50), tmp_path / "s.ply")
    args = launch.parse_args([str(scene), "--port", "0", "--max-splats", "40", "--max-decoded-mb", "512",
                              "--max-upload-total-mb", "3", "--output-dir", str(tmp_path / "out")])
    previous = limits.current()
    app = launch.start_viewer(args)
    try:
        assert limits.current().max_splats == 40 and limits.current().max_decoded_bytes == 512 << 20
        assert app.uploads.max_total_bytes == 3 << 20
        assert app.state.layers == {}  # the 50-splat scene on the command line was refused
        with pytest.raises(DecodeBudgetError, match="at most 40 splats"):
            load(scene)
    finally:
        limits.set_limits(max_splats=previous.max_splats, max_decoded_mb=previous.max_decoded_bytes / (1 << 20))
        launch.shutdown(app)

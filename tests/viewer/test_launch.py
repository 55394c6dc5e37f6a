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

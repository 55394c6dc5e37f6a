"""Finding 6 (CLI): unwritable or uncreatable output folders and a zero field of view are clear errors."""

from __future__ import annotations

import os

import pytest

from lyra.cli import main
from lyra.scene import save
from tests.security.conftest import tiny_gaussians


@pytest.fixture
def scene_file(tmp_path):
    save(tiny_gaussians(16), tmp_path / "in.ply")
    return str(tmp_path / "in.ply")


def _unwritable_folder(tmp_path) -> str:
    """A folder that refuses new files, also for root (sysfs); chmod 0500 when not root."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
        return str(folder)
    if os.path.isdir("/sys/kernel"):
        return "/sys/kernel"
    pytest.skip("no folder here that refuses writes to root")


@pytest.mark.parametrize("where", ["unwritable", "missing, uncreatable", "below a file"])
@pytest.mark.parametrize("command", ["convert", "render"])
def test_cli_writing_where_it_cannot_gives_a_lyra_error(tmp_path, capsys, scene_file, where, command):
    (tmp_path / "a_file").write_text("x")
    folder = {"unwritable": lambda: _unwritable_folder(tmp_path),
              "missing, uncreatable": lambda: "/proc/1/no/such/folder",
              "below a file": lambda: str(tmp_path / "a_file" / "sub")}[where]()
    out = os.path.join(folder, "out.ply" if command == "convert" else "out.png")
    argv = ["convert", scene_file, out] if command == "convert" else ["render", scene_file, "--out", out, "--size", "16x16"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"lyra {command}: error:") and "Traceback" not in err, err
    assert "OS error" in err or "folder" in err


@pytest.mark.parametrize("fov", ["0", "-10", "180", "nan", "inf"])
def test_render_with_a_degenerate_field_of_view_is_a_clear_error(tmp_path, capsys, scene_file, fov):
    assert main(["render", scene_file, "--out", str(tmp_path / "o.png"), "--size", "16x16", "--fov", fov]) == 1
    err = capsys.readouterr().err
    assert "--fov" in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()

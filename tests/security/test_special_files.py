"""Finding 2 (hangs): FIFOs, terminals and devices are refused before they are opened, by every reader."""

from __future__ import annotations

import contextlib
import os

import pytest

from lyra.errors import SceneFileError
from lyra.scene import load
from lyra.scene.formats import detect_format, lyra_tensor, ply, ply_compressed, sequence_dir, sog, splat, spz
from tests.security.conftest import call_with_deadline

READERS = [load, detect_format, ply.read, ply_compressed.read, splat.read, lyra_tensor.read, sequence_dir.read,
           spz.read, sog.read]


def _release(fifo):
    """Open the FIFO's write end so a reader stuck in open() returns (only needed if the fix regresses)."""
    def release():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    return release


@pytest.mark.parametrize("reader", READERS, ids=lambda r: f"{r.__module__}.{r.__name__}")
@pytest.mark.parametrize("suffix", [".ply", ".splat", ".zip", ".compressed.ply", ".spz", ".sog"])
def test_fifo_is_refused_promptly_by_every_reader(tmp_path, reader, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    outcome, value = call_with_deadline(lambda: reader(fifo), 5.0, on_timeout=_release(fifo))
    assert outcome == "raised" and isinstance(value, SceneFileError), value
    assert "FIFO" in str(value)


@pytest.mark.parametrize("device", ["/dev/ptmx", "/proc/self/fd/0", "/dev/zero", "/dev/null"])
def test_devices_are_refused_promptly(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    for reader in (load, detect_format, ply.read, splat.read, lyra_tensor.read):
        outcome, value = call_with_deadline(lambda r=reader: r(device), 5.0)
        assert outcome == "raised" and isinstance(value, SceneFileError), (reader, value)
        assert "expected" in str(value)


def test_fifo_manifest_and_fifo_frames_in_a_folder_do_not_hang(tmp_path, gaussians):
    from lyra.scene import save

    save(gaussians(4), tmp_path / "frame_00000.ply")
    os.mkfifo(tmp_path / "frame_00001.ply")  # not a regular file: not a frame
    outcome, value = call_with_deadline(lambda: load(tmp_path), 5.0, on_timeout=_release(tmp_path / "frame_00001.ply"))
    assert outcome == "ok" and len(value) == 1
    os.mkfifo(tmp_path / "manifest.json")
    outcome, value = call_with_deadline(lambda: load(tmp_path), 5.0, on_timeout=_release(tmp_path / "manifest.json"))
    assert outcome == "raised" and isinstance(value, SceneFileError) and "FIFO" in str(value)


def test_symlink_to_a_fifo_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "scene.ply").symlink_to(tmp_path / "pipe")
    outcome, value = call_with_deadline(lambda: load(tmp_path / "scene.ply"), 5.0, on_timeout=_release(tmp_path / "pipe"))
    assert outcome == "raised" and isinstance(value, SceneFileError)

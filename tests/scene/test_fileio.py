import os

import pytest

from lyra import fileio
from lyra.errors import SceneFileError
from lyra.fileio import atomic_directory, atomic_write


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "scene.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["scene.bin"]


def test_atomic_write_refuses_to_overwrite_when_asked(tmp_path):
    target = tmp_path / "scene.bin"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError), atomic_write(target, overwrite=False) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"old"


def test_atomic_directory_replaces_a_folder_only_when_complete(tmp_path):
    target = tmp_path / "clip"
    target.mkdir()
    (target / "frame_00000.ply").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "frame_00000.ply").write_text("half")
        raise RuntimeError("cancelled")
    assert (target / "frame_00000.ply").read_text() == "old"
    with atomic_directory(target) as tmp:
        (tmp / "frame_00000.ply").write_text("new")
    assert (target / "frame_00000.ply").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["clip"]


def test_atomic_directory_restores_the_old_folder_when_the_swap_fails(tmp_path, monkeypatch):
    target = tmp_path / "clip"
    target.mkdir()
    (target / "frame_00000.ply").write_text("old")
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError("device busy")
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", failing_replace)
    with pytest.raises(SceneFileError, match="busy"), atomic_directory(target) as tmp:
        (tmp / "frame_00000.ply").write_text("new")
    assert (target / "frame_00000.ply").read_text() == "old"
    assert os.listdir(tmp_path) == ["clip"]

"""Format detection by content, and output format from a file name."""

from __future__ import annotations

import pytest

from lyra.errors import SceneFileError
from lyra.scene import load, save
from lyra.scene.formats import detect_format
from lyra.scene.formats.detect import format_from_name


@pytest.mark.parametrize(("name", "fmt"), [("a.ply", "ply"), ("a.compressed.ply", "ply-compressed"), ("a.splat", "splat"), ("a.PLY", "ply")])
def test_written_files_are_detected(tmp_path, gaussians_factory, name, fmt):
    save(gaussians_factory(4), tmp_path / name)
    assert detect_format(tmp_path / name) == fmt


def test_folder_is_a_sequence(tmp_path):
    assert detect_format(tmp_path) == "sequence"


@pytest.mark.parametrize(("name", "fmt"), [("x.compressed.ply", "ply-compressed"), ("x.ply", "ply"), ("x.splat", "splat"), ("frames", "sequence")])
def test_format_from_name(tmp_path, name, fmt):
    assert format_from_name(tmp_path / name) == fmt


def test_unknown_suffix_raises():
    with pytest.raises(SceneFileError, match="'.obj'"):
        format_from_name("scene.obj")


def test_empty_file_raises(tmp_path):
    (tmp_path / "e.ply").write_bytes(b"")
    with pytest.raises(SceneFileError, match="empty file"):
        load(tmp_path / "e.ply")


def test_garbage_file_names_what_was_found_without_quoting_it(tmp_path):
    (tmp_path / "g.ply").write_bytes(b"GARBAGE!" * 10)
    with pytest.raises(SceneFileError, match="80 bytes of another kind") as info:
        load(tmp_path / "g.ply")
    assert "GARBAGE" not in str(info.value)


def test_missing_path_raises(tmp_path):
    with pytest.raises(SceneFileError, match="nothing at that path"):
        load(tmp_path / "nope.ply")

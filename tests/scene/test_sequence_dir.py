"""Sequence folders (numbered frames + manifest) and zips of frames."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence, load, save
from lyra.scene.formats import sequence_dir


def three_frames(factory):
    return [factory(n, sh_degree=1, seed=n) for n in (3, 5, 7)]


def test_round_trip_keeps_frames_times_and_fps(tmp_path, gaussians_factory):
    frames = three_frames(gaussians_factory)
    save(GaussianSequence(frames, times=[0.0, 0.5, 2.0], fps=12), tmp_path / "seq")
    back = load(tmp_path / "seq")
    assert isinstance(back, GaussianSequence)
    assert back.times == [0.0, 0.5, 2.0] and back.fps == 12
    assert [len(f) for f in back] == [3, 5, 7]
    assert torch.equal(back[1].means, frames[1].means)


def test_writer_names_frames_and_manifest(tmp_path, gaussians_factory):
    save(GaussianSequence(three_frames(gaussians_factory)), tmp_path / "seq")
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["frame_00000.ply", "frame_00001.ply", "frame_00002.ply", "manifest.json"]
    manifest = json.loads((tmp_path / "seq" / "manifest.json").read_text())
    assert manifest["frames"][2] == "frame_00002.ply" and manifest["fps"] == 24


def test_folder_without_manifest_orders_by_number_not_name(tmp_path, gaussians_factory):
    frames = three_frames(gaussians_factory)
    for number, frame in zip([2, 10, 100], frames, strict=True):  # "time_100" sorts before "time_2" as text
        save(frame, tmp_path / f"time_{number}.ply")
    back = load(tmp_path)
    assert [len(f) for f in back] == [3, 5, 7]
    assert back.times == [0.0, 1 / 24, 2 / 24]


def test_manifest_frame_list_overrides_numeric_order(tmp_path, gaussians_factory):
    frames = three_frames(gaussians_factory)
    for i, frame in enumerate(frames):
        save(frame, tmp_path / f"frame_{i}.ply")
    (tmp_path / "manifest.json").write_text(json.dumps({"fps": 30, "frames": ["frame_2.ply", "frame_0.ply"]}))
    back = load(tmp_path)
    assert [len(f) for f in back] == [7, 3] and back.fps == 30


def test_manifest_naming_missing_frame_raises(tmp_path, gaussians_factory):
    save(gaussians_factory(3), tmp_path / "frame_0.ply")
    (tmp_path / "manifest.json").write_text(json.dumps({"frames": ["frame_0.ply", "frame_1.ply"]}))
    with pytest.raises(SceneFileError, match="frame_1.ply"):
        load(tmp_path)


def test_bad_manifest_json_raises(tmp_path, gaussians_factory):
    save(gaussians_factory(3), tmp_path / "frame_0.ply")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(SceneFileError, match="invalid JSON"):
        load(tmp_path)


def test_folder_with_no_frames_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SceneFileError, match="no frames"):
        load(tmp_path)


def test_frames_may_mix_formats(tmp_path, gaussians_factory):
    save(gaussians_factory(4), tmp_path / "f_0.compressed.ply")
    save(gaussians_factory(6), tmp_path / "f_1.splat")
    assert [len(f) for f in load(tmp_path)] == [4, 6]


def test_overwrite_false_keeps_existing_folder(tmp_path, gaussians_factory):
    save(GaussianSequence(three_frames(gaussians_factory)), tmp_path / "seq")
    with pytest.raises(SceneFileError, match="existing folder"):
        save(GaussianSequence([gaussians_factory(2)]), tmp_path / "seq", overwrite=False)
    assert len(load(tmp_path / "seq")) == 3


def test_zip_of_frames_loads_in_numeric_order(tmp_path, gaussians_factory):
    frames = three_frames(gaussians_factory)
    with zipfile.ZipFile(tmp_path / "clip.zip", "w") as archive:
        for number, frame in zip([9, 10, 11], frames, strict=True):
            save(frame, tmp_path / "f.ply")
            archive.write(tmp_path / "f.ply", f"clip/frame_{number}.ply")
    back = load(tmp_path / "clip.zip")
    assert [len(f) for f in back] == [3, 5, 7]


def test_zip_with_path_traversal_raises(tmp_path, gaussians_factory):
    save(gaussians_factory(3), tmp_path / "f.ply")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.write(tmp_path / "f.ply", "../../frame_0.ply")
    with pytest.raises(SceneFileError, match="relative paths"):
        load(tmp_path / "evil.zip")


def test_zip_declaring_too_many_bytes_raises(tmp_path, monkeypatch, gaussians_factory):
    save(gaussians_factory(3), tmp_path / "f.ply")
    with zipfile.ZipFile(tmp_path / "big.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(tmp_path / "f.ply", "frame_0.ply")
        archive.writestr("frame_1.ply", b"\0" * 100_000)  # compresses ~1000:1
    monkeypatch.setattr(sequence_dir, "MAX_ZIP_BYTES", 50_000)
    with pytest.raises(SceneFileError, match="uncompressed bytes"):
        load(tmp_path / "big.zip")


def test_zip_member_compressed_like_a_bomb_raises(tmp_path, monkeypatch, gaussians_factory):
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("frame_0.ply", b"\0" * 2_000_000)  # ~1000:1
    with pytest.raises(SceneFileError, match="zip bomb"):
        load(tmp_path / "bomb.zip")


def test_corrupt_zip_raises(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + b"\xff" * 64)
    with pytest.raises(SceneFileError, match="zip"):
        load(tmp_path / "bad.zip")

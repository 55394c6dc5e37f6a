"""Finding 5 and 6 (sequences): zip bombs by total expansion, repeated frames, hostile manifest numbers and nesting."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from lyra.errors import LyraError, SceneFileError
from lyra.scene import load, save
from lyra.scene.formats import sequence_dir


def test_zip_bomb_of_many_small_members_is_refused_by_total_expansion(tmp_path, monkeypatch):
    # Each member stays under the per-member ratio floor (1 MiB); together they expand ~1000:1.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(8):
            archive.writestr(f"frame_{i:05d}.ply", b"\0" * sequence_dir.RATIO_CHECK_ABOVE_BYTES)
    (tmp_path / "bomb.zip").write_bytes(buffer.getvalue())
    assert len(buffer.getvalue()) < 100_000
    extracted = []
    monkeypatch.setattr(sequence_dir.shutil, "copyfileobj", lambda *a, **k: extracted.append(a))
    with pytest.raises(SceneFileError, match="in total") as info:
        load(tmp_path / "bomb.zip")
    assert "zip bomb" in str(info.value)
    assert extracted == []  # refused before a single byte was written


def test_honest_zip_still_loads(tmp_path, gaussians):
    save(gaussians(40), tmp_path / "clip" / "frame_00000.ply")
    save(gaussians(40, seed=1), tmp_path / "clip" / "frame_00001.ply")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((tmp_path / "clip").iterdir()):
            archive.write(path, f"clip/{path.name}")
    (tmp_path / "clip.zip").write_bytes(buffer.getvalue())
    assert len(load(tmp_path / "clip.zip")) == 2


def test_manifest_listing_a_frame_twice_is_refused(tmp_path, gaussians):
    save(gaussians(3), tmp_path / "frame_0.ply")
    (tmp_path / "manifest.json").write_text(json.dumps({"frames": ["frame_0.ply"] * 1000}))
    with pytest.raises(SceneFileError, match="each file listed once"):
        load(tmp_path)


@pytest.mark.parametrize("text", [
    '{"fps": ' + "9" * 5000 + "}",
    '{"times": [' + "1" * 5000 + "]}",
    '{"fps": 1e999}',
    '{"frames": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "[" * 100_000,
    '{"a": ' * 50_000 + "1" + "}" * 50_000,
])
def test_manifest_with_huge_numbers_or_deep_nesting_raises_a_lyra_error(tmp_path, gaussians, text):
    save(gaussians(3), tmp_path / "frame_0.ply")
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(LyraError):
        load(tmp_path)

"""PlyRows: a PLY frame ranked from two columns and read row by row, with the values ``ply.read`` gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence, load, save
from lyra.scene.formats import ply
from lyra.scene.formats.ply import PlyRows
from lyra.scene.importance import gaussians_log_importance, log_sigmoid

from .conftest import make_gaussians


@pytest.mark.parametrize("sh_degree", [0, 3])
def test_rows_read_equal_the_whole_file_read_then_indexed(tmp_path, sh_degree, monkeypatch):
    g = make_gaussians(3000, sh_degree=sh_degree, seed=4)
    save(g, tmp_path / "f.ply")
    monkeypatch.setattr(ply, "CHUNK_BYTES", 4096)  # many chunks, two threads
    rows = np.sort(np.random.default_rng(0).choice(3000, 1100, replace=False))
    part = PlyRows.open(tmp_path / "f.ply").read(rows)
    whole = load(tmp_path / "f.ply")[torch.from_numpy(rows)]
    for name in ("means", "quats", "scales", "opacities", "sh"):
        assert torch.equal(getattr(part, name), getattr(whole, name)), name


def test_importance_from_the_file_columns_matches_the_activated_splats(tmp_path):
    g = make_gaussians(500, sh_degree=1, seed=2)
    save(g, tmp_path / "f.ply")
    reader = PlyRows.open(tmp_path / "f.ply")
    assert len(reader) == 500
    np.testing.assert_allclose(reader.log_importance(), gaussians_log_importance(load(tmp_path / "f.ply")), atol=2e-5)


def test_log_sigmoid_is_stable_at_the_extremes():
    x = np.array([-200.0, -30.0, 0.0, 30.0, 200.0], np.float32)
    np.testing.assert_allclose(log_sigmoid(x), -np.logaddexp(0, -x.astype(np.float64)), rtol=1e-6, atol=1e-7)


def test_only_uniform_binary_ply_has_a_row_reader(tmp_path):
    g = make_gaussians(20, sh_degree=0)
    save(g, tmp_path / "f.ply")
    text = (tmp_path / "f.ply").read_bytes()
    header_end = text.index(b"end_header\n") + len(b"end_header\n")
    values = np.frombuffer(text[header_end:], "<f4").reshape(20, -1)
    ascii_header = text[:header_end].replace(b"binary_little_endian", b"ascii")
    (tmp_path / "a.ply").write_bytes(ascii_header + b"".join(" ".join(map(str, r)).encode() + b"\n" for r in values))
    assert PlyRows.open(tmp_path / "f.ply") is not None
    assert PlyRows.open(tmp_path / "a.ply") is None
    assert len(load(tmp_path / "a.ply")) == 20


def test_a_chosen_row_with_nan_is_refused(tmp_path):
    g = make_gaussians(50, sh_degree=0)
    g.means[7, 0] = float("nan")
    save(g, tmp_path / "f.ply")
    reader = PlyRows.open(tmp_path / "f.ply")
    assert len(reader.read(np.array([1, 2, 3]))) == 3
    with pytest.raises(SceneFileError):
        reader.read(np.array([3, 7]))


def test_a_lazy_ply_sequence_has_row_readers_and_reading_rows_reads_no_frame(tmp_path):
    save(GaussianSequence([make_gaussians(40, seed=i) for i in range(3)], fps=3), tmp_path / "clip")
    seq = load(tmp_path / "clip")
    reader = seq.frames.row_reader(1)
    assert reader is seq.frames.row_reader(1)  # made once
    assert len(reader.read(np.arange(5))) == 5 and seq.frames.reads == 0
    assert load(tmp_path / "clip", drop_invalid=True).frames.row_reader(0) is None  # dropping renumbers rows

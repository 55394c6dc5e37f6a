"""Lazy 4D sequences: opened from headers alone, frames read on demand into a byte-bounded cache."""

from __future__ import annotations

import gc
import shutil
import weakref

import pytest

from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence, load, save
from lyra.scene.lazy_frames import gaussians_nbytes

from .conftest import make_gaussians


@pytest.fixture
def sequence_folder(tmp_path):
    frames = [make_gaussians(100 + 20 * i, sh_degree=1 + (i % 2), seed=i) for i in range(6)]
    save(GaussianSequence(frames, [0.1 * i for i in range(6)], fps=10.0), tmp_path / "seq")
    return tmp_path / "seq", frames


def count_reads(monkeypatch):
    """Count calls of the PLY reader (every frame file goes through it)."""
    from lyra.scene.formats import ply

    calls = []
    original = ply.read
    monkeypatch.setattr(ply, "read", lambda path, **kw: calls.append(path) or original(path, **kw))
    return calls


def test_opens_from_headers_without_reading_frames(sequence_folder, monkeypatch):
    folder, frames = sequence_folder
    calls = count_reads(monkeypatch)
    seq = load(folder)
    assert seq.is_lazy and len(seq) == 6 and calls == []
    assert seq.times == pytest.approx([0.1 * i for i in range(6)]) and seq.fps == 10.0
    assert seq.num_gaussians == [len(f) for f in frames] and seq.sh_degree == 2
    assert calls == [] and seq.frames.cached() == []
    frame = seq[3]
    assert len(calls) == 1
    assert seq[3] is frame and len(calls) == 1  # cached
    assert frame.equal(load(folder / "frame_00003.ply"))


@pytest.mark.parametrize("as_zip", [False, True])
def test_values_identical_to_loading_each_file(sequence_folder, tmp_path, as_zip):
    folder, _ = sequence_folder
    path = folder
    if as_zip:
        path = tmp_path / "seq.zip"
        shutil.make_archive(str(tmp_path / "seq"), "zip", folder)
    seq = load(path)
    assert seq.is_lazy
    for i, frame in enumerate(seq):
        assert frame.equal(load(folder / f"frame_{i:05d}.ply"))


def test_memory_stays_bounded_while_walking_all_frames(sequence_folder):
    folder, frames = sequence_folder
    seq = load(folder)
    budget = gaussians_nbytes(frames[-1]) * 2 + 1  # about two frames
    seq.frames.budget_bytes = budget
    first = weakref.ref(seq[0])
    for i in range(len(seq)):
        seq[i]
        assert seq.frames.nbytes <= budget
    gc.collect()
    assert first() is None, "the first frame is still alive after walking the sequence"
    assert seq.frames.reads == len(seq)


def test_prefetch_reads_ahead_on_a_background_thread(sequence_folder):
    seq = load(sequence_folder[0])
    futures = seq.frames.prefetch([1, 2])
    for future in futures:
        future.result(timeout=60)
    assert set(seq.frames.cached()) == {1, 2}
    reads = seq.frames.reads
    seq[1]
    seq[2]
    assert seq.frames.reads == reads  # served from the cache
    seq.frames.close()


def test_bad_frame_raises_when_reached(sequence_folder):
    folder, _ = sequence_folder
    data = (folder / "frame_00002.ply").read_bytes()
    (folder / "frame_00002.ply").write_bytes(data[: len(data) // 2])
    seq = load(folder)  # headers are intact
    seq[1]
    with pytest.raises(SceneFileError):
        seq[2]


def test_streaming_save_of_a_lazy_sequence(sequence_folder, tmp_path):
    folder, frames = sequence_folder
    seq = load(folder)
    seq.frames.budget_bytes = 1  # one frame at a time
    save(seq, tmp_path / "copy")
    assert len(seq.frames.cached()) == 1
    copy = load(tmp_path / "copy")
    assert copy.num_gaussians == [len(f) for f in frames]
    assert copy[5].equal(load(folder / "frame_00005.ply"), atol=1e-6)  # a re-encode: log/logit round trips

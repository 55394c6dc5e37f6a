"""A lazily opened 4D sequence in the viewer: frames read on demand, prefetched, exported frame by frame."""

from __future__ import annotations

import pytest

from lyra.scene import GaussianSequence, load, save
from viewer.state import AppState

from .conftest import random_gaussians


@pytest.fixture
def lazy_clip(tmp_path):
    frames = [random_gaussians(200 + 10 * i, seed=i, sh_degree=1) for i in range(5)]
    save(GaussianSequence(frames, fps=5), tmp_path / "clip")
    return load(tmp_path / "clip"), tmp_path


def test_opening_reads_no_frame_and_showing_reads_one(lazy_clip):
    seq, _ = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    assert seq.frames.reads == 0
    assert state.time_info().num_frames == 5 and state.has_sh()  # SH degree from the headers
    assert seq.frames.reads == 0
    buffer = state.display_buffer("clip", 0)
    assert len(buffer) == 200 and seq.frames.reads == 1


def test_prefetch_reads_the_next_frames_in_the_background(lazy_clip):
    seq, _ = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    state.set_frame(1)
    reads = seq.frames.reads
    for future in state.prefetch(ahead=2):
        future.result(timeout=60)
    assert {2, 3} <= set(seq.frames.cached()) and seq.frames.reads == reads + 2


def test_prefetch_prepares_the_cut_buffer_so_a_switch_is_a_cache_hit(lazy_clip):
    seq, _ = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    state.set_splat_budget(paused=50, playing=50)
    for future in state.prefetch(ahead=1):
        future.result(timeout=60)
    prepared = state._buffers._entries[("clip", 1)].cut
    state.set_frame(1)
    assert state.send_buffer("clip", 1) is prepared and len(prepared) == 50


def test_edits_on_lazy_frames_reach_every_frame_and_export_streams(lazy_clip):
    seq, tmp_path = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    seq.frames.budget_bytes = 1  # at most one frame of the clip in memory
    selected = state.select(lambda i, frame: frame.means[:, 0] > 0)
    assert selected > 0
    state.delete_selected()
    edited = state.edited_scene("clip")
    assert edited.is_lazy  # written frame by frame
    save(edited, tmp_path / "out")
    back = load(tmp_path / "out")
    for i in range(5):
        original = load(tmp_path / "clip" / f"frame_{i:05d}.ply")
        assert back.num_gaussians[i] == int((original.means[:, 0] <= 0).sum())
        assert bool((back[i].means[:, 0] <= 0).all())

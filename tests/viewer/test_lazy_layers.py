"""A lazily opened 4D sequence in the viewer: frames read on demand, prefetched, exported frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from lyra.scene import GaussianSequence, load, save
from lyra.scene.lazy_frames import gaussians_nbytes
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


def test_layer_info_and_the_status_line_of_a_playing_clip_read_no_frame(lazy_clip):
    from viewer.panels.status import status_line

    seq, tmp_path = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    state.set_frame(3)
    info = state.layer_info()
    assert status_line(state).startswith("**230** splats shown")  # 230 < the playing budget
    assert seq.frames.reads == 0  # panels refresh on every frame: they must not read frames whole
    frame = load(tmp_path / "clip" / "frame_00003.ply")
    lo, hi = frame.bounds()
    assert info.splats == 230 and info.bounds == (tuple(map(float, lo)), tuple(map(float, hi)))


def test_prefetch_prepares_the_next_frames_from_their_files_rows(lazy_clip):
    seq, _ = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    state.set_splat_budget(paused=50, playing=50)
    state.set_frame(1)
    futures = state.prefetch(ahead=2)
    assert len(futures) == 2
    cuts = [future.result(timeout=60) for future in futures]
    assert [len(c) for c in cuts] == [50, 50]
    assert seq.frames.reads == 0  # ranked and cut from the files' rows: no frame read whole, none cached


def test_asking_again_for_frames_still_queued_reuses_their_prefetch(lazy_clip):
    seq, _ = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    state.set_splat_budget(paused=50, playing=50)
    first = state.prefetch(ahead=2)
    again = state.prefetch(ahead=2)
    assert all(a is b or b.done() for a, b in zip(again, first, strict=True))
    assert len({id(f) for f in first + again}) <= 4
    for future in first + again:
        assert len(future.result(timeout=60)) == 50


def test_a_prefetched_cut_is_what_the_switch_sends(lazy_clip):
    seq, _ = lazy_clip
    state = AppState()
    state.add_scene(seq, "clip")
    state.set_splat_budget(paused=50, playing=50)
    (prepared,) = [f.result(timeout=60) for f in state.prefetch(ahead=1)]
    state.set_frame(1)
    (item,) = state.send_plan()
    assert state.send_buffer(item) is prepared and len(prepared) == 50


@pytest.mark.parametrize("sh_view", [None, (0.5, -2.0, 3.0)])
def test_the_budgeted_frame_is_the_same_whichever_route_prepared_it(lazy_clip, sh_view):
    """Issue 19: prefetch thread, on-demand send, the preparing job and an in-memory copy of the frame
    give the same buffer, byte for byte."""
    seq, tmp_path = lazy_clip
    routes = {}
    for route in ("prefetch", "on demand", "job", "in memory"):
        state = AppState()
        clip = load(tmp_path / "clip") if route != "in memory" else GaussianSequence([g for g in load(tmp_path / "clip")], fps=5)
        state.add_scene(clip, "clip")
        state.set_view_position(sh_view)
        state.set_splat_budget(paused=60, playing=60)
        state.select(lambda i, frame: frame.means[:, 1] > 0.5)  # tinted rows must match too
        if route == "prefetch":
            state.set_frame(1)
            state.prefetch(ahead=1)[0].result(timeout=60)
        elif route == "job":
            assert state.prepare_frames("clip") == 5
        state.set_frame(2)
        (item,) = state.send_plan()
        routes[route] = state.send_buffer(item)
    assert len(routes["prefetch"]) == 60
    for route, buffer in routes.items():
        np.testing.assert_array_equal(buffer, routes["on demand"], err_msg=route)


def test_playing_a_long_clip_keeps_both_caches_within_their_byte_budgets(tmp_path):
    frames = [random_gaussians(600, seed=i, sh_degree=1) for i in range(30)]
    save(GaussianSequence(frames, fps=30), tmp_path / "long")
    seq = load(tmp_path / "long")
    seq.frames.budget_bytes = 2 * gaussians_nbytes(frames[0])
    state = AppState(buffer_cache_bytes=6 * 200 * 32 + 6 * 600 * 4)  # ~six frames' cuts and rankings
    state.add_scene(seq, "clip")
    state.set_splat_budget(paused=300, playing=200)
    state.set_playing(True)
    peak = 0
    for step in range(2 * len(frames)):  # two loops
        state.set_frame(step % len(frames))
        (item,) = state.send_plan()
        assert len(state.send_buffer(item)) == 200
        for future in state.prefetch(ahead=2):
            future.result(timeout=60)
        peak = max(peak, state.cached_buffer_bytes())
        assert state.cached_buffer_bytes() <= state.buffer_cache_bytes
        assert seq.frames.nbytes <= seq.frames.budget_bytes
    assert peak > state.buffer_cache_bytes // 2  # the cache was used, not bypassed


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

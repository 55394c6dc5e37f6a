"""Edits through the app state: selection modes, soft delete, crop, undo/redo, history, per-frame scope."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lyra.errors import EditError
from viewer import edit_actions as act
from viewer.splat_buffer import unpack_centers

HALF = (0.5, 0.5, 0.5)
IDENTITY = (1.0, 0.0, 0.0, 0.0)


def inside_box(means, half=0.5):
    return (means.abs() <= half).all(-1)


def test_box_select_selects_exactly_the_splats_inside(static_state):
    count = act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    frame = static_state.current()
    assert torch.equal(frame.selected, inside_box(frame.gaussians.means))
    assert count == int(inside_box(frame.gaussians.means).sum()) > 0


def test_selection_modes_combine_masks(static_state):
    means = static_state.current().gaussians.means
    left, low = means[:, 0] < 0, means[:, 1] < 0
    act.select_box(static_state, (-1, 0, 0), IDENTITY, (1, 2, 2))  # x in [-2, 0]
    act.select_box(static_state, (0, -1, 0), IDENTITY, (2, 1, 2), mode="add")
    assert torch.equal(static_state.current().selected, left | low)
    act.select_box(static_state, (0, -1, 0), IDENTITY, (2, 1, 2), mode="subtract")
    assert torch.equal(static_state.current().selected, left & ~low)
    act.select_box(static_state, (-1, 0, 0), IDENTITY, (1, 2, 2))
    act.select_box(static_state, (0, -1, 0), IDENTITY, (2, 1, 2), mode="intersect")
    assert torch.equal(static_state.current().selected, left & low)


def test_invert_and_clear_selection(static_state):
    act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    before = static_state.current().selected.clone()
    static_state.invert_selection()
    assert torch.equal(static_state.current().selected, ~before)
    static_state.clear_selection()
    assert static_state.selected_count() == 0


def test_delete_hides_selected_splats_from_the_display_buffer(static_state):
    g = static_state.current().gaussians
    act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    static_state.delete_selected()
    shown = unpack_centers(static_state.display_buffer("static"))
    assert len(shown) == int((~inside_box(g.means)).sum())
    assert not inside_box(torch.from_numpy(shown)).any()


def test_undo_restores_the_exact_buffer_and_redo_deletes_again(static_state):
    original = static_state.display_buffer("static").copy()
    act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    selected = static_state.display_buffer("static").copy()
    static_state.delete_selected()
    deleted = static_state.display_buffer("static").copy()
    assert static_state.undo() is not None
    np.testing.assert_array_equal(static_state.display_buffer("static"), selected)  # selection (tinted) is back too
    static_state.redo()
    np.testing.assert_array_equal(static_state.display_buffer("static"), deleted)
    static_state.undo()
    static_state.clear_selection()
    np.testing.assert_array_equal(static_state.display_buffer("static"), original)


def test_deleted_splats_cannot_be_selected(static_state):
    act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    static_state.delete_selected()
    act.select_box(static_state, (0, 0, 0), IDENTITY, (2, 2, 2))
    frame = static_state.current()
    assert not (frame.selected & frame.deleted).any()
    assert int(frame.selected.sum()) == int((~frame.deleted).sum())


def test_crop_keeps_only_the_selection(static_state):
    act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    static_state.crop_to_selection()
    edited = static_state.edited_scene()
    assert len(edited) > 0 and bool(inside_box(edited.means).all())


def test_delete_with_nothing_selected_is_an_edit_error(static_state):
    with pytest.raises(EditError, match="nothing is selected"):
        static_state.delete_selected()
    assert static_state.history.labels() == []


def test_history_lists_done_and_undone_edits_and_a_new_edit_clears_redo(static_state):
    act.select_box(static_state, (0, 0, 0), IDENTITY, HALF)
    static_state.delete_selected()
    act.select_sphere(static_state, (0.8, 0.8, 0.8), 0.5)
    static_state.delete_selected()
    static_state.undo()
    labels = static_state.history.labels()
    assert [done for _, done in labels] == [True, False]
    assert all(label.startswith("Delete selection") for label, _ in labels)
    act.select_sphere(static_state, (-0.8, -0.8, -0.8), 0.5)
    static_state.crop_to_selection()
    assert [done for _, done in static_state.history.labels()] == [True, True]
    assert static_state.redo() is None


def test_all_frames_scope_deletes_in_every_frame(sequence_state):
    act.select_box(sequence_state, (0, 0, 0), IDENTITY, HALF)
    sequence_state.delete_selected()
    for frame in sequence_state.layer().frames:
        assert torch.equal(frame.deleted, inside_box(frame.gaussians.means))


def test_current_frame_scope_deletes_only_in_the_current_frame(sequence_state):
    sequence_state.set_scope("current")
    sequence_state.set_frame(2)
    act.select_box(sequence_state, (0, 0, 0), IDENTITY, HALF)
    sequence_state.delete_selected()
    deleted_per_frame = [int(f.deleted.sum()) for f in sequence_state.layer().frames]
    assert deleted_per_frame[2] > 0
    assert deleted_per_frame[:2] == [0, 0] and deleted_per_frame[3] == 0


def test_undo_of_an_all_frames_delete_restores_every_frame(sequence_state):
    act.select_box(sequence_state, (0, 0, 0), IDENTITY, HALF)
    sequence_state.delete_selected()
    sequence_state.undo()
    assert all(not f.deleted.any() for f in sequence_state.layer().frames)


def test_export_scene_of_a_sequence_drops_deleted_splats_per_frame(sequence_state):
    act.select_box(sequence_state, (0, 0, 0), IDENTITY, HALF)
    sequence_state.delete_selected()
    edited = sequence_state.edited_scene()
    layer = sequence_state.layer()
    assert [len(f) for f in edited.frames] == [int((~f.deleted).sum()) for f in layer.frames]
    assert edited.times == layer.times and edited.fps == layer.fps


def test_frame_switch_shows_that_frames_splats(sequence_state):
    sequence_state.set_frame(3)
    assert len(sequence_state.display_buffer("clip")) == 330


def test_display_buffer_is_packed_once_per_frame_and_repacked_after_an_edit(sequence_state):
    first = sequence_state.display_buffer("clip", 1)
    assert sequence_state.display_buffer("clip", 1) is first
    act.select_box(sequence_state, (0, 0, 0), IDENTITY, HALF)
    assert sequence_state.display_buffer("clip", 1) is not first


def test_buffer_cache_evicts_least_recently_used_frames_beyond_its_budget(make_gaussians):
    from lyra.scene import GaussianSequence
    from viewer.state import AppState

    state = AppState(buffer_cache_bytes=2 * 100 * 32)  # room for two 100-splat frames
    state.add_scene(GaussianSequence([make_gaussians(100, seed=i) for i in range(4)]), "clip")
    buffers = [state.display_buffer("clip", i) for i in range(4)]
    assert state.cached_buffer_bytes() <= 2 * 100 * 32
    assert state.display_buffer("clip", 3) is buffers[3]  # recent: still cached
    again = state.display_buffer("clip", 0)  # evicted: packed again, same bytes
    assert again is not buffers[0]
    np.testing.assert_array_equal(again, buffers[0])

"""The splat budget: a deterministic most-important subset is sent; edits act on the full scene."""

from __future__ import annotations

import numpy as np
import torch

from lyra.scene import GaussianSequence
from viewer.panels.status import status_line
from viewer.splat_budget import DEFAULT_PAUSED_BUDGET, DEFAULT_PLAYING_BUDGET, budget_rows, importance, importance_order
from viewer.state import AppState

from .conftest import random_gaussians


def test_defaults():
    state = AppState()
    assert (state.budget_paused, state.budget_playing) == (DEFAULT_PAUSED_BUDGET, DEFAULT_PLAYING_BUDGET) == (1_500_000, 400_000)


def test_subset_is_the_most_important_splats_and_deterministic():
    g = random_gaussians(1000)
    order = importance_order(g)
    deleted = np.zeros(1000, bool)
    rows = budget_rows(order, deleted, 100)
    assert len(rows) == 100 and np.all(np.diff(rows) > 0)
    score = importance(g).numpy()
    assert score[rows].min() >= np.sort(score)[-100]  # nothing left out beats anything sent
    assert np.array_equal(rows, budget_rows(importance_order(g), deleted, 100))  # same input, same subset
    assert budget_rows(order, deleted, 1000) is None


def test_rows_index_the_display_buffer_without_deleted_splats():
    g = random_gaussians(50)
    order = importance_order(g)
    deleted = np.zeros(50, bool)
    deleted[order[:5]] = True  # the five most important are deleted
    rows = budget_rows(order, deleted, 10)
    live_index = np.nonzero(~deleted)[0]  # display row r holds splat live_index[r]
    sent = set(live_index[rows].tolist())
    assert sent == set(order[5:15].tolist())


def test_state_sends_budget_and_reports_showing_x_of_y():
    state = AppState()
    state.add_scene(random_gaussians(400), "static")
    state.set_splat_budget(paused=150, playing=60)
    sent = state.send_buffer("static", 0)
    full = state.display_buffer("static", 0)
    assert len(sent) == 150 and len(full) == 400
    assert state.budget_status() == (150, 400)
    assert "showing 150 of 400" in status_line(state)
    state.playing = True
    assert len(state.send_buffer("static", 0)) == 60
    # every sent row is a row of the full buffer (same packed splats, not re-packed)
    full_rows = {row.tobytes() for row in full}
    assert all(row.tobytes() in full_rows for row in sent)
    state.playing = False
    state.set_splat_budget(paused=10_000, playing=60)
    assert len(state.send_buffer("static", 0)) == 400 and state.budget_status() is None


def test_edits_and_selections_act_on_the_full_scene_not_the_subset():
    state = AppState()
    g = random_gaussians(400)
    state.add_scene(GaussianSequence([g, random_gaussians(300, seed=1)], fps=4), "clip")
    state.set_splat_budget(paused=50, playing=50)
    assert len(state.send_buffer("clip", 0)) == 50
    # select every splat with x > 0: the selection covers splats that were never sent
    selected = state.select(lambda i, frame: frame.means[:, 0] > 0)
    assert selected == int((g.means[:, 0] > 0).sum())
    assert selected > 50
    state.delete_selected()
    edited = state.edited_scene("clip")
    assert len(edited[0]) == int((g.means[:, 0] <= 0).sum())  # the full set was edited
    assert torch.all(edited[0].means[:, 0] <= 0)
    assert len(state.send_buffer("clip", 0)) == 50  # still at budget, now from what is left

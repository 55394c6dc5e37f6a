"""The splat budget: a deterministic most-important subset is sent; edits act on the full scene."""

from __future__ import annotations

import numpy as np
import torch

from lyra.scene import GaussianSequence
from viewer.panels.status import status_line
from viewer.splat_budget import (
    DEFAULT_PAUSED_BUDGET,
    DEFAULT_PLAYING_BUDGET,
    chosen_splats,
    importance,
    importance_order,
)
from viewer.state import AppState

from .conftest import random_gaussians


def test_defaults():
    state = AppState()
    assert (state.budget_paused, state.budget_playing) == (DEFAULT_PAUSED_BUDGET, DEFAULT_PLAYING_BUDGET) == (1_500_000, 400_000)


def test_subset_is_the_most_important_splats_and_deterministic():
    g = random_gaussians(1000)
    order = importance_order(g)
    deleted = np.zeros(1000, bool)
    chosen = chosen_splats(order, deleted, 100)
    assert len(chosen) == 100 and np.all(np.diff(chosen) > 0)
    score = importance(g).numpy()
    assert score[chosen].min() >= np.sort(score)[-100]  # nothing left out beats anything sent
    assert np.array_equal(chosen, chosen_splats(importance_order(g), deleted, 100))  # same input, same subset
    assert chosen_splats(order, deleted, 1000) is None


def test_deleted_splats_are_never_sent():
    g = random_gaussians(50)
    order = importance_order(g)
    deleted = np.zeros(50, bool)
    deleted[order[:5]] = True  # the five most important are deleted
    assert set(chosen_splats(order, deleted, 10).tolist()) == set(order[5:15].tolist())


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
    # every sent row is packed exactly as in the full buffer
    full_rows = {row.tobytes() for row in full}
    assert all(row.tobytes() in full_rows for row in state.send_buffer("static", 0))
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


def test_simplify_action_merges_every_frame_in_scope_and_undoes():
    from viewer import edit_actions as act

    state = AppState()
    state.add_scene(GaussianSequence([random_gaussians(400), random_gaussians(300, seed=1)], fps=4), "clip")
    state.select(lambda i, frame: frame.means[:, 0] > 0.5)
    state.delete_selected()  # soft deletes are applied before merging
    live = [int((random_gaussians(n, seed=s).means[:, 0] <= 0.5).sum()) for n, s in ((400, 0), (300, 1))]
    counts = act.simplify(state, "50%")
    assert counts == [round(n / 2) for n in live]
    assert state.edited_scene("clip").num_gaussians == counts
    assert state.undo() == "Simplify"
    assert state.edited_scene("clip").num_gaussians == live


def test_paused_and_idle_upgrades_to_the_full_frame(app, monkeypatch):
    import time

    from viewer import scene_sync

    monkeypatch.setattr(scene_sync, "IDLE_SECONDS", 0.2)
    app.state.add_scene(random_gaussians(400), "static")
    app.state.set_splat_budget(paused=100, playing=50)
    app.refresh()
    assert app.state.budget_status() == (100, 400)
    deadline = time.time() + 10
    while app.state.budget_status() is not None and time.time() < deadline:
        time.sleep(0.05)
    assert app.state.budget_status() is None and app.state.sent["static"] == (400, 400)
    app.state.set_frame(0)  # same frame: stays full
    assert app.state.current_budget() > 400

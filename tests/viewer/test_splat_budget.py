"""The splat budget: a real cap on what the browser receives; a deterministic most-important subset; edits
act on the full scene; full detail is a separate setting with its own cap; the status line says what was sent."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lyra.scene import GaussianSequence
from lyra.scene.importance import gaussians_log_importance
from viewer.panels.status import status_line
from viewer.splat_budget import (
    DEFAULT_FULL_DETAIL_CAP,
    DEFAULT_PAUSED_BUDGET,
    DEFAULT_PLAYING_BUDGET,
    DisplayPolicy,
    split_budget,
    top_splats,
)
from viewer.state import AppState

from .conftest import random_gaussians


def sent_now(state: AppState) -> int:
    """Splats every visible layer's buffer holds after a full send of the current plan."""
    return sum(len(state.send_buffer(item)) for item in state.send_plan() if item.visible)


def test_defaults():
    policy = AppState().display_policy()
    assert (policy.paused, policy.playing) == (DEFAULT_PAUSED_BUDGET, DEFAULT_PLAYING_BUDGET) == (1_500_000, 400_000)
    assert policy.full_detail and policy.full_detail_cap == DEFAULT_FULL_DETAIL_CAP == 2_000_000
    assert DisplayPolicy(is_playing=True).splat_budget() == 400_000
    assert DisplayPolicy(settled=False).splat_budget() == 400_000  # right after a frame change
    assert DisplayPolicy(full_detail=False).splat_budget() == 1_500_000


def test_subset_is_the_most_important_splats_and_deterministic():
    g = random_gaussians(1000)
    scores = gaussians_log_importance(g)
    deleted = np.zeros(1000, bool)
    chosen = top_splats(scores, deleted, 100)
    assert len(chosen) == 100 and np.all(np.diff(chosen) > 0)
    assert scores[chosen].min() >= np.sort(scores)[-100]  # nothing left out beats anything sent
    assert np.array_equal(chosen, top_splats(scores.copy(), deleted, 100))  # same input, same subset
    assert top_splats(scores, deleted, 1000) is None


def test_ties_at_the_threshold_keep_index_order():
    scores = np.array([1, 5, 3, 3, 3, 0, 3], np.float32)
    assert top_splats(scores, np.zeros(7, bool), 3).tolist() == [1, 2, 3]  # 5, then the first two 3s


def test_deleted_splats_are_never_sent():
    g = random_gaussians(50)
    scores = gaussians_log_importance(g)
    order = np.argsort(-scores, kind="stable")
    deleted = np.zeros(50, bool)
    deleted[order[:5]] = True  # the five most important are deleted
    assert set(top_splats(scores, deleted, 10).tolist()) == set(order[5:15].tolist())


@pytest.mark.parametrize("live", [[10, 0, 5], [400, 300], [7, 7, 7], [1_000_000, 3]])
@pytest.mark.parametrize("budget", [0, 1, 100, 500, 10**7])
def test_budget_split_never_exceeds_the_cap_nor_a_layer(budget, live):
    shares = split_budget(budget, live)
    assert sum(shares) == min(budget, sum(live))
    assert all(0 <= s <= n for s, n in zip(shares, live, strict=True))


def test_sends_the_budget_when_paused_playing_and_after_a_frame_change():
    state = AppState()
    state.add_scene(GaussianSequence([random_gaussians(400), random_gaussians(400, seed=1)], fps=4), "clip")
    state.set_splat_budget(paused=150, playing=60)
    state.set_full_detail(False)
    full = state.display_buffer("clip", 0)
    (item,) = state.send_plan()
    sent = state.send_buffer(item)
    assert len(sent) == 150 and len(full) == 400
    full_rows = {row.tobytes() for row in full}  # every sent row is packed exactly as in the full buffer
    assert all(row.tobytes() in full_rows for row in sent)
    state.set_playing(True)
    assert sent_now(state) == 60
    state.set_playing(False)
    assert sent_now(state) == 60  # stopped: the playing cut until idle
    assert state.settle(state.version) and sent_now(state) == 150
    state.set_frame(1)
    assert sent_now(state) == 60  # a frame change shows the playing budget first
    assert not state.settle(state.version - 1)  # a stale idle timer changes nothing
    assert state.settle(state.version) and sent_now(state) == 150
    state.set_splat_budget(paused=10_000, playing=60)
    assert sent_now(state) == 400


def test_a_paused_budget_holds_after_idle_unless_full_detail_is_on_and_full_detail_has_its_own_cap():
    """Issue 21: a paused budget of 100,000 still showed 343,274 splats once idle."""
    state = AppState()
    state.add_scene(random_gaussians(400), "static")
    state.set_splat_budget(paused=100, playing=50)
    state.set_full_detail(False)
    assert state.settle(state.version) is False  # already settled: nothing to do
    assert sent_now(state) == 100
    state.set_full_detail(True, cap=300)
    assert sent_now(state) == 300
    state.set_full_detail(True, cap=10_000)
    assert sent_now(state) == 400


def test_the_cap_holds_over_all_visible_layers_and_hidden_layers_send_nothing():
    state = AppState()
    state.add_scene(random_gaussians(400), "a")
    state.add_scene(random_gaussians(300, seed=1), "b")
    state.add_scene(random_gaussians(200, seed=2), "c")
    state.set_full_detail(False)
    state.set_splat_budget(paused=180, playing=50)
    assert sent_now(state) == 180
    state.set_visible("c", False)
    plan = {item.layer: item.share for item in state.send_plan()}
    assert plan["c"] == 0 and plan["a"] + plan["b"] == 180 and plan["a"] > plan["b"]
    assert state.send_status().sent == 180 and state.send_status().live == 700


def test_status_line_says_one_true_thing():
    """Issue 21: '1,500,000 / 1,500,000 splats shown · showing 400,000 of 1,500,000' while playing."""
    state = AppState()
    state.add_scene(GaussianSequence([random_gaussians(400), random_gaussians(400, seed=1)], fps=4), "clip")
    state.set_splat_budget(paused=150, playing=60)
    state.set_playing(True)
    line = status_line(state)
    assert line.startswith("**60** of 400 splats shown (playing budget 60;") and line.count("splats") == 1
    assert state.send_status().sent == sent_now(state)
    state.set_playing(False)
    state.settle(state.version)
    assert status_line(state).startswith("**400** splats shown")  # full detail (cap 2M) once idle
    state.set_full_detail(False)
    assert status_line(state).startswith("**150** of 400 splats shown (paused budget 150;")
    assert state.send_status().sent == sent_now(state) == 150


def test_edits_and_selections_act_on_the_full_scene_not_the_subset():
    state = AppState()
    g = random_gaussians(400)
    state.add_scene(GaussianSequence([g, random_gaussians(300, seed=1)], fps=4), "clip")
    state.set_splat_budget(paused=50, playing=50)
    state.set_full_detail(False)
    assert sent_now(state) == 50
    # select every splat with x > 0: the selection covers splats that were never sent
    selected = state.select(lambda i, frame: frame.means[:, 0] > 0)
    assert selected == int((g.means[:, 0] > 0).sum())
    assert selected > 50
    state.delete_selected()
    edited = state.edited_scene("clip")
    assert len(edited[0]) == int((g.means[:, 0] <= 0).sum())  # the full set was edited
    assert torch.all(edited[0].means[:, 0] <= 0)
    assert sent_now(state) == 50  # still at budget, now from what is left


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


def node_sizes(app) -> int:
    return sum(len(node.buffer) for node in app.sync_scene._nodes.values() if node.visible)


def test_idle_after_a_frame_change_settles_to_the_paused_budget_and_never_above_it(app, monkeypatch):
    from viewer import scene_sync

    monkeypatch.setattr(scene_sync, "IDLE_SECONDS", 0.2)
    app.state.add_scene(GaussianSequence([random_gaussians(400), random_gaussians(400, seed=1)], fps=4), "clip")
    app.state.set_splat_budget(paused=100, playing=50)
    app.state.set_full_detail(False)
    app.refresh()
    assert node_sizes(app) == 100
    app.state.set_frame(1)
    app.refresh()
    assert node_sizes(app) == 50  # the playing budget first
    deadline = time.time() + 30
    while not app.state.display_policy().settled and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # the settle's refresh
    assert node_sizes(app) == 100 == app.state.send_status().sent  # settled: the paused budget, not every splat
    assert f"**{node_sizes(app):,}** of 400 splats shown" in status_line(app.state)

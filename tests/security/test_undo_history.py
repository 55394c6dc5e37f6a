"""Finding 5 (undo memory): colour edits keep only the selected rows (once per selection), undo stays exact,
and the history is bounded by bytes as well as by count."""

from __future__ import annotations

import pytest
import torch

from lyra.scene.synthetic import random_gaussians
from viewer import edit_actions as act
from viewer.state import AppState

N = 8_000


def _state(sh_degree: int = 3) -> AppState:
    state = AppState()
    state.add_scene(random_gaussians(N, seed=0, sh_degree=sh_degree, spread=0.6), "scene")
    return state


def _select_a_tenth(state: AppState) -> int:
    return act.select_sphere(state, (0.0, 0.0, 0.0), 0.35)


def _colour_edits(state: AppState, count: int) -> None:
    for i in range(count):
        [lambda: act.brightness(state, 1.05), lambda: act.tint(state, (1.0, 0.2, 0.1), 0.1),
         lambda: act.saturation(state, 1.1)][i % 3]()


@pytest.mark.slow
def test_colour_edits_store_the_selected_rows_once_not_the_sh_tensor():
    state = _state()
    scene_sh = state.current().gaussians.sh
    selected = _select_a_tenth(state)
    assert 0.02 * N < selected < 0.3 * N
    _colour_edits(state, 20)
    history = state.history_bytes()
    # one byte per SH value of the selected rows (a residual against the inverse colour ops) + row indices,
    # once for the whole run of edits; plus the selection mask and a little
    assert history < selected * (48 + 4) * 1.2 + N + 64 * 1024
    assert history < 0.05 * scene_sh.numel() * 4  # the old way kept 20 whole SH tensors (400x this)


@pytest.mark.slow
def test_twenty_colour_edits_undo_and_redo_exactly():
    state = _state()
    original = state.current().gaussians
    _select_a_tenth(state)
    states = [original]
    for i in range(20):
        _colour_edits(state, 1) if i % 2 else act.brightness(state, 0.9 + 0.01 * i)
        states.append(state.current().gaussians)
    for expected in reversed(states[:-1]):
        state.undo()
        assert torch.equal(state.current().gaussians.sh, expected.sh)
    for expected in states[1:]:
        state.redo()
        assert torch.equal(state.current().gaussians.sh, expected.sh)
    # a move in the middle of colour edits breaks the chain and still undoes exactly
    act.translate(state, (0.1, 0.0, 0.0))
    act.brightness(state, 1.2)
    state.undo()
    state.undo()
    assert torch.equal(state.current().gaussians.means, original.means)
    assert torch.equal(state.current().gaussians.sh, states[-1].sh)


def test_history_is_bounded_by_bytes_and_forgetting_keeps_the_rest_exact():
    state = _state()
    _select_a_tenth(state)
    act.brightness(state, 1.1)  # patch 1: the small selection's rows
    small = state.history_bytes()
    state.invert_selection()
    chain_start = state.current().gaussians
    act.brightness(state, 0.8)  # patch 2: the large selection's rows
    both = state.history_bytes()
    assert both > 4 * small
    state.history.max_bytes = both - small // 2  # one more edit must push the oldest out
    act.brightness(state, 0.7)  # chained onto patch 2: adds (almost) nothing
    assert [label for label, _ in state.history.labels()] == ["Brightness x0.8", "Brightness x0.7"]
    assert state.history_bytes() <= state.history.max_bytes
    assert state.undo() and state.undo() and state.undo() is None
    assert torch.equal(state.current().gaussians.sh, chain_start.sh)


def test_undo_stays_exact_through_lossy_and_singular_colour_edits():
    state = _state()
    _select_a_tenth(state)
    states = [state.current().gaussians]
    edits = [lambda: act.brightness(state, 1e-3), lambda: act.brightness(state, 1e3),  # far off: exceptions
             lambda: act.saturation(state, 0.0), lambda: act.tint(state, (0.2, 0.4, 0.6), 1.0),  # singular
             lambda: act.brightness(state, 0.7), lambda: act.tint(state, (1.0, 1.0, 1.0), 0.3)]
    for edit in edits:
        edit()
        states.append(state.current().gaussians)
    for expected in reversed(states[:-1]):
        state.undo()
        assert torch.equal(state.current().gaussians.sh, expected.sh)
    for expected in states[1:]:
        state.redo()
        assert torch.equal(state.current().gaussians.sh, expected.sh)

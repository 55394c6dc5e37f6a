"""The viewer's splat budget: above it, the browser gets only the most important splats of a frame.

A 2M-splat frame is 64 MB of viser buffer and a client-side sort per frame;
while playing that cannot keep up, and even paused a weak GPU stalls. Above
the budget (default 1.5M paused, 400k playing; the Scene tab sets both) the
client is sent the ``budget`` splats of highest importance
``opacity * (s_x s_y s_z)^(2/3)`` (opacity times footprint area: what a splat
paints), ranked once per Gaussians object and cached, so a frame switch is a
pack of only the chosen splats. Ties keep index order, so the subset
is deterministic. Only what is *sent* changes: the state, selections, edits
and exports always act on every splat.
"""

from __future__ import annotations

import numpy as np
import torch

from lyra.scene import Gaussians

DEFAULT_PAUSED_BUDGET = 1_500_000
DEFAULT_PLAYING_BUDGET = 400_000


def importance(gaussians: Gaussians) -> torch.Tensor:  # [N]
    """Opacity times footprint area ``(s_x s_y s_z)^(2/3)``: a view-independent stand-in for screen coverage."""
    return gaussians.opacities * gaussians.scales.prod(1).clamp(min=1e-30).pow(2.0 / 3.0)


def importance_order(gaussians: Gaussians) -> np.ndarray:  # [N] int64, most important first
    with torch.no_grad():
        score = importance(gaussians).float()
    return torch.argsort(score, descending=True, stable=True).numpy()


def chosen_splats(order: np.ndarray, deleted: np.ndarray, budget: int) -> np.ndarray | None:
    """Indices (increasing) of the ``budget`` most important splats not ``deleted``; None when all fit."""
    alive = ~deleted
    if int(alive.sum()) <= budget:
        return None
    return np.sort(order[alive[order]][:budget])

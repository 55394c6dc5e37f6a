"""Floater detection: planted outliers around a dense cluster are flagged, nothing else."""

from __future__ import annotations

import torch

from lyra.edit.floaters import floater_mask, mean_neighbor_distance


def test_floater_mask_flags_planted_outliers_only():
    gen = torch.Generator().manual_seed(0)
    cluster = torch.rand(2000, 3, generator=gen)  # dense unit cube
    outliers = torch.tensor([[5.0, 5.0, 5.0], [-4.0, 0.5, 0.5], [0.5, 6.0, -3.0], [3.0, -3.0, 3.0]])
    means = torch.cat([cluster, outliers])
    mask = floater_mask(means, k=16, std_ratio=2.0)
    assert mask[-4:].all()
    assert not mask[:-4].any()


def test_mean_neighbor_distance_on_a_line():
    means = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]])
    assert torch.allclose(mean_neighbor_distance(means, k=1), torch.tensor([1.0, 1.0, 2.0]))


def test_floater_mask_flags_nothing_in_tiny_sets():
    means = torch.tensor([[0.0, 0, 0], [100.0, 0, 0]])
    assert floater_mask(means, k=16).tolist() == [False, False]

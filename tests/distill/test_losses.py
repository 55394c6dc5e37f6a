"""Distillation losses against hand-computed values."""

import warnings

import pytest
import torch

from lyra.distill import losses
from lyra.distill.losses import LossWeights, depth_loss, distillation_loss, normalize_depth


def test_official_default_weights():
    w = LossWeights()
    assert (w.mse, w.lpips, w.depth, w.opacity) == (1.0, 0.5, 0.05, 0.1)


def test_mse_by_hand():
    pred = torch.zeros(1, 1, 2, 3)
    target = torch.tensor([[[[1.0, 0, 0], [0, 0.5, 0]]]])
    assert losses.mse_loss(pred, target).item() == pytest.approx((1 + 0.25) / 6)


def test_normalize_depth_by_hand():
    depth = torch.tensor([[[1.0, 2.0], [3.0, 10.0]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    # valid values 1, 2, 3: median 2, mean |d - 2| = 2/3
    out = normalize_depth(depth, valid)
    assert torch.allclose(out[0][valid[0]], torch.tensor([-1.5, 0.0, 1.5]))


def test_depth_loss_by_hand():
    target = torch.tensor([[[1.0, 2.0, 3.0]]])
    pred = torch.tensor([[[1.0, 2.0, 5.0]]])
    # target -> [-1.5, 0, 1.5]; pred: median 2, mad (1 + 0 + 3) / 3 = 4/3 -> [-0.75, 0, 2.25]
    # smooth-L1 (beta 1): |0.75| -> 0.5 * 0.5625, 0, |0.75| -> 0.28125; mean over 3
    expected = (0.28125 + 0 + 0.28125) / 3
    assert depth_loss(pred, target).item() == pytest.approx(expected)


def test_depth_loss_is_scale_and_shift_invariant():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(2, 8, 8, generator=gen) + 0.5
    pred = torch.rand(2, 8, 8, generator=gen) + 0.5
    base = depth_loss(pred, target)
    assert base.item() > 0.01
    assert depth_loss(3.7 * pred + 1.2, target).item() == pytest.approx(base.item(), rel=1e-5)
    assert depth_loss(pred, 0.2 * target + 5.0).item() == pytest.approx(base.item(), rel=1e-5)
    assert depth_loss(2.0 * target - 0.3, target).item() == pytest.approx(0.0, abs=1e-6)


def test_depth_loss_ignores_invalid_target_pixels():
    target = torch.tensor([[[1.0, 2.0, 3.0, 0.0]]])
    pred = torch.tensor([[[1.0, 2.0, 3.0, 100.0]]])
    assert depth_loss(pred, target).item() == pytest.approx(0.0, abs=1e-7)


def test_total_is_the_weighted_sum():
    pred = torch.full((1, 2, 2, 3), 0.5)
    target = torch.zeros(1, 2, 2, 3)
    pd = torch.tensor([[[1.0, 2.0], [3.0, 5.0]]])
    td = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    opac = torch.tensor([0.2, 0.4])
    weights = LossWeights(mse=2.0, lpips=0.0, depth=0.5, opacity=0.1)
    total, parts = distillation_loss(pred, target, weights, pd, td, opac)
    expected = 2.0 * 0.25 + 0.5 * depth_loss(pd, td).item() + 0.1 * 0.3
    assert total.item() == pytest.approx(expected)
    assert parts["mse"] == pytest.approx(0.25) and parts["opacity"] == pytest.approx(0.3)
    assert "lpips" not in parts


def test_lpips_without_local_weights_warns_once_and_weighs_zero(monkeypatch, tmp_path):
    monkeypatch.setattr(losses, "vgg_weights_path", lambda: tmp_path / "missing.pth")
    losses._lpips_unavailable_reason.cache_clear()
    monkeypatch.setattr(losses, "_warned", False)
    pred, target = torch.rand(1, 4, 4, 3), torch.rand(1, 4, 4, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        total1, parts = distillation_loss(pred, target, LossWeights())
        total2, _ = distillation_loss(pred, target, LossWeights())
    losses._lpips_unavailable_reason.cache_clear()
    assert sum("LPIPS-VGG disabled" in str(w.message) for w in caught) == 1
    assert "lpips" not in parts
    assert total1.item() == pytest.approx(losses.mse_loss(pred, target).item())
    assert total2.item() == total1.item()

"""Self-distillation losses with the official Lyra-1 weights as defaults (LYRA_FACTS.md "Training").

``total = mse * MSE + lpips * LPIPS-VGG + depth * SSI-depth + opacity * mean opacity``

* MSE on RGB in [0, 1];
* LPIPS-VGG through the ``lpips`` package, only when both the package and the
  torchvision VGG-16 weights are already on this machine: we never download.
  Otherwise a one-time warning and the term's weight becomes 0;
* scale-and-shift-invariant depth: per image, subtract the median of the valid
  pixels and divide by their mean absolute deviation from it, then smooth-L1
  between the normalised maps on the valid pixels;
* mean opacity of the Gaussians, only in pruning stages (it pushes the
  pruned-away Gaussians to become transparent).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

VGG16_WEIGHTS = "vgg16-397923af.pth"  # the file torchvision's vgg16(weights=IMAGENET1K_V1) looks for


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """Loss weights; defaults are the official ones (opacity applies in pruning stages only)."""

    mse: float = 1.0
    lpips: float = 0.5
    depth: float = 0.05
    opacity: float = 0.1


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:  # [..., H, W, 3] each -> scalar
    return F.mse_loss(pred, target)


def normalize_depth(depth: Tensor, valid: Tensor, eps: float = 1e-6) -> Tensor:  # [N, H, W], [N, H, W] bool
    """Per image ``(d - median) / mean|d - median|`` over the valid pixels (invalid ones are left as is).

    Invariant to ``d -> a d + b`` for ``a > 0``. Images without valid pixels pass unchanged.
    """
    out = []
    for d, m in zip(depth, valid, strict=True):
        values = d[m]
        if values.numel() == 0:
            out.append(d)
            continue
        median = values.median()
        spread = (values - median).abs().mean().clamp_min(eps)
        out.append((d - median) / spread)
    return torch.stack(out)


def depth_loss(pred: Tensor, target: Tensor, valid: Tensor | None = None) -> Tensor:
    """Scale-and-shift-invariant depth loss (smooth-L1 of the normalised maps), ``[N, H, W]`` inputs.

    ``valid`` defaults to finite, positive target pixels. Returns 0 (with a graph) when nothing is valid.
    """
    if valid is None:
        valid = torch.isfinite(target) & (target > 0)
    if not valid.any():
        return pred.sum() * 0.0
    target = torch.where(valid, target, torch.zeros_like(target))
    pred_n = normalize_depth(pred, valid)
    target_n = normalize_depth(target, valid)
    return F.smooth_l1_loss(pred_n[valid], target_n[valid])


def opacity_loss(opacities: Tensor) -> Tensor:  # [..., N] -> scalar
    return opacities.mean()


def vgg_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG16_WEIGHTS


@functools.cache
def _lpips_unavailable_reason() -> str | None:
    try:
        import lpips  # noqa: F401
    except ImportError:
        return "the lpips package is not installed (pip install lpips)"
    if not vgg_weights_path().is_file():
        return f"the VGG-16 weights are not at {vgg_weights_path()} (torchvision's vgg16 IMAGENET1K_V1 file)"
    return None


@functools.cache
def _lpips_model(device_type: str):
    import lpips

    # pretrained=True loads lpips' own linear heads (shipped in the package); the VGG trunk comes from
    # torchvision, which finds its weights in the hub cache checked above instead of downloading.
    model = lpips.LPIPS(net="vgg", pretrained=True, verbose=False).eval().requires_grad_(False)
    return model.to(device_type)


_warned = False


def lpips_available() -> bool:
    """True when LPIPS-VGG can run without any download; warns once (and only once) when it cannot."""
    global _warned
    reason = _lpips_unavailable_reason()
    if reason is not None and not _warned:
        _warned = True
        warnings.warn(f"LPIPS-VGG disabled (weight 0): {reason}", RuntimeWarning, stacklevel=2)
    return reason is None


def lpips_loss(pred: Tensor, target: Tensor) -> Tensor:  # [N, H, W, 3] in [0, 1] each -> scalar
    model = _lpips_model(pred.device.type)
    to_nchw = lambda x: x.permute(0, 3, 1, 2).float() * 2 - 1  # noqa: E731  lpips wants [-1, 1]
    return model(to_nchw(pred), to_nchw(target)).mean()


def distillation_loss(
    pred_rgb: Tensor,  # [N, H, W, 3]
    target_rgb: Tensor,  # [N, H, W, 3]
    weights: LossWeights,
    pred_depth: Tensor | None = None,  # [N, H, W]
    target_depth: Tensor | None = None,  # [N, H, W]
    opacities: Tensor | None = None,  # [..., G] of the Gaussians (pruning stages)
) -> tuple[Tensor, dict[str, float]]:
    """Weighted total and its parts (as floats, unweighted) for logging."""
    parts: dict[str, Tensor] = {"mse": mse_loss(pred_rgb, target_rgb)}
    total = weights.mse * parts["mse"]
    if weights.lpips > 0 and lpips_available():
        parts["lpips"] = lpips_loss(pred_rgb, target_rgb)
        total = total + weights.lpips * parts["lpips"]
    if weights.depth > 0 and pred_depth is not None and target_depth is not None:
        parts["depth"] = depth_loss(pred_depth, target_depth)
        total = total + weights.depth * parts["depth"]
    if weights.opacity > 0 and opacities is not None:
        parts["opacity"] = opacity_loss(opacities)
        total = total + weights.opacity * parts["opacity"]
    return total, {k: float(v.detach()) for k, v in parts.items()}

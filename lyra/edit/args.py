"""Argument checks shared by the selection and edit functions (one place for their error messages)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import EditError


def as_vector(value: Tensor | Sequence[float], like: Tensor, size: int, name: str) -> Tensor:
    """``value`` as a finite ``[size]`` tensor with the dtype/device of ``like``; EditError otherwise."""
    out = torch.as_tensor(value, dtype=like.dtype, device=like.device).reshape(-1)
    if out.numel() != size:
        raise EditError(f"{name} must have {size} numbers, got {out.numel()}")
    if not bool(torch.isfinite(out).all()):
        raise EditError(f"{name} must be finite, got {out.tolist()}")
    return out


def as_mask(mask: Tensor, length: int | None, name: str = "mask") -> Tensor:
    """Check that ``mask`` is a 1-D bool tensor (of ``length`` entries when given); EditError otherwise."""
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.ndim != 1:
        found = f"{type(mask).__name__} {getattr(mask, 'dtype', '')} {tuple(getattr(mask, 'shape', ()))}"
        raise EditError(f"{name} must be a 1-D bool tensor, got {found}")
    if length is not None and len(mask) != length:
        raise EditError(f"{name} has {len(mask)} entries, expected {length}")
    return mask

"""Transformer block and 3D patch embedding of the Lyra decoder.

Names follow the official state dict (``norm1``, ``attn.qkv``, ``attn.proj``,
``norm2``, ``mlp.fc1``, ``mlp.fc2``; ``proj``, ``norm`` for patch embeds). The
``reset_*`` steps reproduce the official initialisation draw order
(DECODER_SPEC.md section 11), so a seeded construction matches it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def trunc_normal_linear_(module: nn.Module) -> None:
    """Truncated normal (std 0.02, bounds +-2) on a Linear's weight, zero bias."""
    nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class Attention(nn.Module):
    """Full (non-causal) multi-head self-attention; qkv channels packed ``[3, heads, head_dim]``."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)
        for linear in (self.qkv, self.proj):
            trunc_normal_linear_(linear)

    def forward(self, x: Tensor) -> Tensor:  # [b, L, dim]
        b, length, dim = x.shape
        qkv = self.qkv(x).reshape(b, length, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [b, heads, L, head_dim]
        out = F.scaled_dot_product_attention(q, k, v)  # scale head_dim^-0.5
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        for linear in (self.fc1, self.fc2):
            trunc_normal_linear_(linear)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class TransformerBlock(nn.Module):
    """``x + attn(ln1(x))`` then ``x + mlp(ln2(x))``; LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        for linear in (self.attn.qkv, self.attn.proj, self.mlp.fc1, self.mlp.fc2):
            trunc_normal_linear_(linear)

    def forward(self, x: Tensor) -> Tensor:  # [b, L, dim]
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed3D(nn.Module):
    """``[N, T, Cin, H, W]`` -> tokens ``[N, T*(H/p)*(W/p), E]`` in (t, y, x) order:
    Conv3d with kernel = stride = ``patch``, then LayerNorm (eps 1e-5).
    ``zero_init`` zeroes the convolution (the embedding starts as a no-op)."""

    def __init__(self, patch: tuple[int, int, int], in_channels: int, embed_dim: int, zero_init: bool = False):
        super().__init__()
        self.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(embed_dim)
        fan_out = patch[0] * patch[1] * patch[2] * embed_dim
        with torch.no_grad():
            self.proj.weight.normal_(0.0, (2.0 / fan_out) ** 0.5)
            self.proj.bias.zero_()
            if zero_init:
                self.proj.weight.zero_()

    def forward(self, x: Tensor) -> Tensor:  # [N, T, Cin, H, W] -> [N, T*h*w, E]
        x = self.proj(x.permute(0, 2, 1, 3, 4))  # [N, E, T, h, w]
        return self.norm(x.flatten(2).transpose(1, 2))

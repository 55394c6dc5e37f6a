"""Bidirectional Mamba-2 block in pure PyTorch (CPU-capable).

The official decoder calls the ``mamba_ssm`` Triton kernels; this module
implements the same mathematics (DECODER_SPEC.md section 5.2) with plain tensor
ops so the decoder runs anywhere. The SSD scan is hand-written because no
well-kept CPU library provides it: :func:`ssd_chunked_scan` is the exact chunked
("state-space dual") form, vectorised within chunks and bounded in memory
(``O(L * chunk)``) by carrying the state across groups of chunks.

Module and parameter names match the official state dict:
``norm.weight``, ``mamba.in_proj.weight``, ``mamba.mamba_scans.{0,1}.*``,
``mamba.out_proj.weight``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Elements of the per-group [b, chunks, Q, Q, heads] intra-chunk tensors; bounds scan memory.
_GROUP_ELEMENTS = 1 << 24


class RMSNorm(nn.Module):
    """``y = x / sqrt(mean(x^2) + eps) * weight`` over the last dim (weight only)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:  # [..., dim]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class GatedRMSNorm(nn.Module):
    """Gate then normalise (``norm_before_gate=False``): ``rms(y * silu(z)) * weight``,
    the RMS taken over groups of ``group_size`` channels."""

    def __init__(self, dim: int, group_size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.group_size = group_size
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: Tensor, z: Tensor) -> Tensor:  # [..., dim] each
        g = y * F.silu(z)
        grouped = g.unflatten(-1, (-1, self.group_size))
        grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return grouped.flatten(-2) * self.weight


def ssd_chunked_scan(
    x: Tensor,  # [b, L, H, P] inputs per head
    dt: Tensor,  # [b, L, H] step sizes (already softplus-ed)
    A: Tensor,  # [H] negative decay rates
    B: Tensor,  # [b, L, G, N] input projections (H divisible by G)
    C: Tensor,  # [b, L, G, N] output projections
    chunk_size: int = 256,
    group_elements: int = _GROUP_ELEMENTS,
) -> Tensor:
    """Causal selective-state-space scan, exactly

    ``S_t = exp(dt_t A) S_{t-1} + dt_t x_t B_t^T``, ``y_t = S_t C_t`` (``S_{-1} = 0``),

    returned as ``[b, L, H, P]`` (without the ``D`` skip term). Computed chunk by
    chunk: inside a chunk in matrix form, across chunks by passing the state.
    Working memory is ``O(b * chunks_per_group * Q^2 * H)`` with the number of
    chunks per group chosen so that this stays below ``group_elements``.
    """
    b, length, heads, headdim = x.shape
    groups, d_state = B.shape[2], B.shape[3]
    q = chunk_size
    num_chunks = max(1, math.ceil(length / q))
    pad = num_chunks * q - length
    if pad:  # dt = 0 on padding: no decay, no input; padded outputs are dropped
        x, dt, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, dt, B, C))
    x = x.reshape(b, num_chunks, q, heads, headdim)
    dt = dt.reshape(b, num_chunks, q, heads)
    B = B.reshape(b, num_chunks, q, groups, d_state)
    C = C.reshape(b, num_chunks, q, groups, d_state)
    head_group = torch.arange(heads, device=x.device) // (heads // groups)  # [H]

    log_decay = torch.cumsum(dt * A, dim=2)  # [b, c, Q, H]
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()  # [l, s]
    state = x.new_zeros(b, heads, headdim, d_state)
    y = torch.empty_like(x)
    step = max(1, group_elements // max(1, b * q * q * heads))
    for c0 in range(0, num_chunks, step):
        c1 = min(num_chunks, c0 + step)
        cs, x_g, dt_g = log_decay[:, c0:c1], x[:, c0:c1], dt[:, c0:c1]
        B_h = B[:, c0:c1][:, :, :, head_group]  # [b, g, Q, H, N]
        C_h = C[:, c0:c1][:, :, :, head_group]
        # Intra-chunk: y_l = sum_{s<=l} (C_l . B_s) exp(cs_l - cs_s) dt_s x_s
        segment = cs[:, :, :, None, :] - cs[:, :, None, :, :]  # [b, g, l, s, H]
        segment = segment.masked_fill(~causal[:, :, None], float("-inf"))
        scores = torch.einsum("bclhn,bcshn->bclsh", C_h, B_h) * torch.exp(segment) * dt_g[:, :, None]
        y_g = torch.einsum("bclsh,bcshp->bclhp", scores, x_g)
        # State each chunk would end with if it started from zero
        to_end = torch.exp(cs[:, :, -1:, :] - cs) * dt_g  # [b, g, Q, H]
        chunk_states = torch.einsum("bcsh,bcshp,bcshn->bchpn", to_end, x_g, B_h)  # [b, g, H, P, N]
        # Pass the state across the chunks of this group
        chunk_decay = torch.exp(cs[:, :, -1])  # [b, g, H]
        entering = []
        for j in range(c1 - c0):
            entering.append(state)
            state = chunk_decay[:, j, :, None, None] * state + chunk_states[:, j]
        entering = torch.stack(entering, dim=1)  # [b, g, H, P, N]
        y_g = y_g + torch.einsum("bclhn,bchpn->bclhp", C_h, entering) * torch.exp(cs)[..., None]
        y[:, c0:c1] = y_g
    return y.reshape(b, num_chunks * q, heads, headdim)[:, :length]


class Mamba2SingleScan(nn.Module):
    """One direction of the bidirectional block: causal depthwise conv, SiLU,
    selective scan with ``D`` skip, gated RMSNorm. Input is the shared in_proj
    output ``[z | x | B | C | dt]``; output ``[b, L, d_inner]``."""

    def __init__(self, d_inner: int, d_state: int, d_conv: int, nheads: int, ngroups: int, chunk_size: int):
        super().__init__()
        self.d_inner, self.d_state, self.nheads, self.ngroups = d_inner, d_state, nheads, ngroups
        self.headdim = d_inner // nheads
        self.chunk_size = chunk_size
        conv_dim = d_inner + 2 * ngroups * d_state
        # Draw order is the official one (conv, dt, A), so a seeded build matches its init.
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, d_conv, groups=conv_dim, padding=d_conv - 1, bias=True)
        dt = torch.exp(torch.rand(nheads) * (math.log(0.1) - math.log(0.001)) + math.log(0.001)).clamp(min=1e-4)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(nheads).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(nheads))
        self.norm = GatedRMSNorm(d_inner, group_size=d_inner // ngroups, eps=1e-5)

    def forward(self, zxbcdt: Tensor) -> Tensor:  # [b, L, 2*Di + 2*G*N + H] -> [b, L, Di]
        b, length, _ = zxbcdt.shape
        conv_dim = self.conv1d.in_channels
        z, xBC, dt = torch.split(zxbcdt, [self.d_inner, conv_dim, self.nheads], dim=-1)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :length].transpose(1, 2))
        x, B, C = torch.split(xBC, [self.d_inner, self.ngroups * self.d_state, self.ngroups * self.d_state], dim=-1)
        x = x.unflatten(-1, (self.nheads, self.headdim))  # [b, L, H, P]
        compute = torch.promote_types(zxbcdt.dtype, torch.float32)  # the kernel works in fp32
        dt = F.softplus(dt.to(compute) + self.dt_bias.to(compute))  # [b, L, H]
        A = -torch.exp(self.A_log.to(compute))  # [H]
        y = ssd_chunked_scan(
            x.to(compute),
            dt,
            A,
            B.unflatten(-1, (self.ngroups, self.d_state)).to(compute),
            C.unflatten(-1, (self.ngroups, self.d_state)).to(compute),
            self.chunk_size,
        )
        y = (y + self.D.to(compute)[:, None] * x.to(compute)).to(zxbcdt.dtype)
        return self.norm(y.flatten(-2), z)


class BidirectionalMamba2(nn.Module):
    """``out_proj(S0(u) + flip(S1(flip(u))))`` with ``u = in_proj(x)``; the
    backward scan sees the whole reversed sequence (conv included). The two
    directions are summed, not averaged."""

    def __init__(
        self,
        d_model: int,
        d_state: int = 256,
        d_conv: int = 4,
        expand: int = 2,
        headdim: int = 64,
        ngroups: int = 1,
        chunk_size: int = 256,
    ):
        super().__init__()
        d_inner = expand * d_model
        nheads = d_inner // headdim
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * ngroups * d_state + nheads, bias=False)
        self.mamba_scans = nn.ModuleList(
            Mamba2SingleScan(d_inner, d_state, d_conv, nheads, ngroups, chunk_size) for _ in range(2)
        )
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # [b, L, d_model] -> [b, L, d_model]
        u = self.in_proj(x)
        forward_scan = self.mamba_scans[0](u)
        backward_scan = self.mamba_scans[1](u.flip(1)).flip(1)
        return self.out_proj(forward_scan + backward_scan)


class Mamba2Block(nn.Module):
    """Pre-norm residual block: ``x + mamba(rmsnorm(x))``."""

    def __init__(self, d_model: int, **mamba_kwargs):
        super().__init__()
        self.norm = RMSNorm(d_model, eps=1e-5)
        self.mamba = BidirectionalMamba2(d_model, **mamba_kwargs)

    def forward(self, x: Tensor) -> Tensor:  # [b, L, d_model]
        return x + self.mamba(self.norm(x))

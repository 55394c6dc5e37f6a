"""The pure-PyTorch Mamba-2: chunked scan and bidirectional block against naive float64 references."""

import math

import pytest
import torch
import torch.nn.functional as F

from lyra.model.mamba2 import GatedRMSNorm, Mamba2Block, RMSNorm, ssd_chunked_scan


def sequential_scan(x, dt, A, B, C):
    """Step-by-step recurrence S_t = exp(dt A) S_{t-1} + dt x B^T, y_t = S_t C (float64)."""
    b, length, heads, headdim = x.shape
    groups, d_state = B.shape[2:]
    head_group = torch.arange(heads) // (heads // groups)
    state = torch.zeros(b, heads, headdim, d_state, dtype=torch.float64)
    ys = []
    for t in range(length):
        decay = torch.exp(dt[:, t] * A)[:, :, None, None]
        inject = dt[:, t, :, None, None] * x[:, t, :, :, None] * B[:, t][:, head_group][:, :, None, :]
        state = decay * state + inject
        ys.append(torch.einsum("bhpn,bhn->bhp", state, C[:, t][:, head_group]))
    return torch.stack(ys, dim=1)


def random_scan_inputs(length, b=2, heads=4, headdim=3, groups=2, d_state=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, length, heads, headdim, generator=g, dtype=torch.float64)
    dt = F.softplus(torch.randn(b, length, heads, generator=g, dtype=torch.float64))
    A = -torch.rand(heads, generator=g, dtype=torch.float64) * 2 - 0.05
    B = torch.randn(b, length, groups, d_state, generator=g, dtype=torch.float64)
    C = torch.randn(b, length, groups, d_state, generator=g, dtype=torch.float64)
    return x, dt, A, B, C


@pytest.mark.parametrize("length", [1, 7, 16, 23, 50])
def test_chunked_scan_matches_sequential_recurrence(length):
    inputs = random_scan_inputs(length)
    expected = sequential_scan(*inputs)
    got = ssd_chunked_scan(*inputs, chunk_size=16)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-12, rtol=1e-10)


def test_chunked_scan_result_does_not_depend_on_chunk_grouping():
    inputs = random_scan_inputs(61)
    one_chunk_per_group = ssd_chunked_scan(*inputs, chunk_size=8, group_elements=1)
    all_in_one_group = ssd_chunked_scan(*inputs, chunk_size=8, group_elements=1 << 30)
    assert torch.allclose(one_chunk_per_group, all_in_one_group, atol=1e-13)


def test_chunked_scan_float32_stays_close_to_float64_over_long_sequence():
    inputs = random_scan_inputs(300, seed=3)
    expected = sequential_scan(*inputs)
    got = ssd_chunked_scan(*(t.float() for t in inputs), chunk_size=256)
    assert (got.double() - expected).abs().max() < 1e-4


def test_rmsnorm_formula():
    norm = RMSNorm(6, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(3, 6)
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5) * torch.arange(1.0, 7.0)
    assert torch.allclose(norm(x), expected, atol=1e-6)


def test_gated_rmsnorm_gates_before_normalising():
    norm = GatedRMSNorm(4, group_size=4, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    y, z = torch.randn(2, 4), torch.randn(2, 4)
    g = y * z * torch.sigmoid(z)
    expected = g / torch.sqrt((g**2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    assert torch.allclose(norm(y, z), expected, atol=1e-6)


def naive_single_scan(scan, u, d_inner, d_state, nheads):
    """One direction written out token by token from DECODER_SPEC 5.2 (float64)."""
    b, length, _ = u.shape
    conv_dim = d_inner + 2 * d_state
    headdim = d_inner // nheads
    z, xbc, dt_raw = u.split([d_inner, conv_dim, nheads], dim=-1)
    w = scan.conv1d.weight[:, 0]  # [conv_dim, K]
    kernel = w.shape[1]
    out = []
    state = torch.zeros(b, nheads, headdim, d_state, dtype=u.dtype)
    A = -torch.exp(scan.A_log)
    for t in range(length):
        v = scan.conv1d.bias.clone().expand(b, conv_dim).clone()
        for k in range(kernel):
            s = t - (kernel - 1) + k
            if s >= 0:
                v = v + w[:, k] * xbc[:, s]
        v = F.silu(v)
        x_t, B_t, C_t = v.split([d_inner, d_state, d_state], dim=-1)
        x_t = x_t.reshape(b, nheads, headdim)
        delta = torch.log1p(torch.exp(dt_raw[:, t] + scan.dt_bias))  # softplus
        state = (
            torch.exp(delta * A)[:, :, None, None] * state
            + delta[:, :, None, None] * x_t[..., None] * B_t[:, None, None, :]
        )
        y_t = (state * C_t[:, None, None, :]).sum(-1) + scan.D[:, None] * x_t
        g = y_t.reshape(b, d_inner) * F.silu(z[:, t])
        out.append(g / torch.sqrt((g**2).mean(-1, keepdim=True) + 1e-5) * scan.norm.weight)
    return torch.stack(out, dim=1)


def test_bidirectional_block_matches_naive_implementation():
    torch.manual_seed(0)
    d_model, d_state, headdim = 8, 6, 4
    block = Mamba2Block(d_model, d_state=d_state, d_conv=4, expand=2, headdim=headdim, chunk_size=4).double()
    with torch.no_grad():  # make every parameter matter (no 1/0 constants)
        for p in block.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 11, d_model, dtype=torch.float64)
    d_inner, nheads = 2 * d_model, 2 * d_model // headdim
    with torch.no_grad():
        normed = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5) * block.norm.weight
        u = normed @ block.mamba.in_proj.weight.T
        forward = naive_single_scan(block.mamba.mamba_scans[0], u, d_inner, d_state, nheads)
        backward = naive_single_scan(block.mamba.mamba_scans[1], u.flip(1), d_inner, d_state, nheads).flip(1)
        expected = x + (forward + backward) @ block.mamba.out_proj.weight.T
        got = block(x)
    assert torch.allclose(got, expected, atol=1e-10)


def test_backward_scan_sees_future_tokens_only():
    torch.manual_seed(1)
    block = Mamba2Block(8, d_state=4, d_conv=4, expand=2, headdim=4, chunk_size=4).double()
    scan = block.mamba.mamba_scans[1]
    u = torch.randn(1, 9, block.mamba.in_proj.out_features, dtype=torch.float64)
    changed = u.clone()
    changed[:, 5] += 1.0
    with torch.no_grad():
        before = scan(u.flip(1)).flip(1)
        after = scan(changed.flip(1)).flip(1)
    differs = (before - after).abs().amax(-1)[0] > 1e-12
    assert differs.tolist() == [True] * 6 + [False] * 3


def test_mamba_parameter_names_and_order():
    block = Mamba2Block(16, d_state=8, headdim=8)
    names = list(block.state_dict())
    scan = ["dt_bias", "A_log", "D", "conv1d.weight", "conv1d.bias", "norm.weight"]
    assert names == (
        ["norm.weight", "mamba.in_proj.weight"]
        + [f"mamba.mamba_scans.{s}.{n}" for s in (0, 1) for n in scan]
        + ["mamba.out_proj.weight"]
    )
    assert block.mamba.in_proj.weight.shape == (2 * 32 + 2 * 8 + 4, 16)
    assert math.prod(block.mamba.mamba_scans[0].conv1d.weight.shape) == (32 + 16) * 4

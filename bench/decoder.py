"""Benchmark of the Lyra decoder on CPU (prints JSON).

* forward time and peak memory of ``forward_gaussians`` for the reduced
  configuration (width 128, 8 blocks) and the full width (512, 16 blocks) on a
  small grid: 2 views, 3 latent frames, 16 x 16 latents;
* peak memory and time of the chunked SSD scan at several sequence lengths
  (full-size head layout: 16 heads x 64, d_state 256), against the naive
  quadratic (full L x L matrix) formulation measured in the same run, plus the
  sequential recurrence's time at the shortest length.

Every measurement runs in a fresh spawned process so its peak RSS
(``ru_maxrss``) is its own; memory figures are the peak increase over the
process's RSS just before the measured call.

Run: ``python bench/decoder.py [--quick]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import platform
import resource
import time

import torch

HEADS, HEADDIM, D_STATE, CHUNK = 16, 64, 256, 256


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _scan_inputs(length: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, length, HEADS, HEADDIM, generator=g)
    dt = torch.nn.functional.softplus(torch.randn(1, length, HEADS, generator=g) - 3)
    A = -torch.rand(HEADS, generator=g) * 4
    B = torch.randn(1, length, 1, D_STATE, generator=g)
    C = torch.randn(1, length, 1, D_STATE, generator=g)
    return x, dt, A, B, C


def quadratic_scan(x, dt, A, B, C):
    """Naive baseline: the whole sequence as one L x L masked matrix (memory O(L^2 H))."""
    cs = torch.cumsum(dt * A, dim=1)  # [b, L, H]
    length = x.shape[1]
    segment = cs[:, :, None, :] - cs[:, None, :, :]  # [b, l, s, H]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    decay = torch.exp(segment.masked_fill(~causal[None, :, :, None], float("-inf")))
    scores = torch.einsum("bln,bsn->bls", C[:, :, 0], B[:, :, 0])[..., None] * decay * dt[:, None]
    return torch.einsum("blsh,bshp->blhp", scores, x)


def sequential_scan(x, dt, A, B, C):
    """Naive baseline: the recurrence one step at a time."""
    state = torch.zeros(x.shape[0], HEADS, HEADDIM, D_STATE)
    ys = []
    for t in range(x.shape[1]):
        state = (
            torch.exp(dt[:, t] * A)[:, :, None, None] * state
            + (dt[:, t, :, None, None] * x[:, t, :, :, None]) * B[:, t, 0][:, None, None, :]
        )
        ys.append(torch.einsum("bhpn,bn->bhp", state, C[:, t, 0]))
    return torch.stack(ys, dim=1)


def _measure_scan(kind: str, length: int) -> dict:
    from lyra.model.mamba2 import ssd_chunked_scan

    torch.set_num_threads(torch.get_num_threads())
    inputs = _scan_inputs(length)
    fn = {
        "chunked": lambda: ssd_chunked_scan(*inputs, chunk_size=CHUNK),
        "quadratic": lambda: quadratic_scan(*inputs),
        "sequential": lambda: sequential_scan(*inputs),
    }[kind]
    before = _rss_mib()
    start = time.perf_counter()
    with torch.no_grad():
        out = fn()
    seconds = time.perf_counter() - start
    return {
        "kind": kind,
        "length": length,
        "seconds": round(seconds, 4),
        "peak_mib": round(_rss_mib() - before, 1),
        "checksum": float(out.double().sum()),
    }


def _measure_forward(width: int, depth: int, heads: int, repeats: int) -> dict:
    from lyra.model import LyraDecoder, LyraDecoderConfig

    config = dataclasses.replace(
        LyraDecoderConfig.official("dynamic"),
        enc_embed_dim=width,
        enc_depth=depth,
        enc_num_heads=heads,
        gaussians_prune_ratio=0.0,
    )
    torch.manual_seed(0)
    model = LyraDecoder(config).eval()
    B, V, T, H, W = 1, 2, 3, 16, 16
    t_out = config.num_output_frames(T)
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        images=torch.randn(B, V * T, 16, H, W, generator=g),
        plucker=torch.randn(B, V * T, 32, H, W, generator=g),
        rays_os=torch.randn(B, V * t_out, 3, H, W, generator=g),
        rays_ds=torch.nn.functional.normalize(torch.randn(B, V * t_out, 3, H, W, generator=g), dim=2),
        time_embeddings=torch.randn(B, T + 1, 16, H, W, generator=g),
    )
    before = _rss_mib()  # model and inputs built; the peak below is the forward pass's own
    with torch.inference_mode():
        model.forward_gaussians(**inputs, num_views=V)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = model.forward_gaussians(**inputs, num_views=V)
            times.append(time.perf_counter() - start)
    return {
        "width": width,
        "depth": depth,
        "parameters": model.num_parameters,
        "grid": {"views": V, "latent_frames": T, "latent_hw": [H, W], "tokens": V * T * (H // 2) * (W // 2)},
        "gaussians": out.shape[1],
        "seconds_median": round(sorted(times)[len(times) // 2], 4),
        "peak_mib_over_model": round(_rss_mib() - before, 1),
    }


def _in_child(fn, *args):
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer lengths and repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else 3
    lengths = [512, 1024, 2048] if args.quick else [512, 1024, 2048, 4096]
    long_lengths = [8192, 16384] if args.quick else [8192, 16384, 32768, 65536]

    report: dict = {
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    report["forward"] = [
        _in_child(_measure_forward, 128, 8, 2, repeats),
        _in_child(_measure_forward, 512, 16, 8, repeats),
    ]
    chunked = [_in_child(_measure_scan, "chunked", n) for n in lengths + long_lengths]
    quadratic = [_in_child(_measure_scan, "quadratic", n) for n in lengths]
    sequential = _in_child(_measure_scan, "sequential", lengths[0])
    for q in quadratic:  # same numbers from both formulations
        c = next(c for c in chunked if c["length"] == q["length"])
        q["relative_checksum_difference"] = abs(q["checksum"] - c["checksum"]) / max(1.0, abs(c["checksum"]))
    first, last = chunked[0], chunked[-1]
    report["scan"] = {
        "layout": {"heads": HEADS, "headdim": HEADDIM, "d_state": D_STATE, "chunk": CHUNK},
        "chunked": chunked,
        "baseline_quadratic": quadratic,
        "baseline_sequential": sequential,
        # Linear growth: the per-token slope between the two longest lengths stays small and constant.
        "chunked_mib_per_1k_tokens_slope": round(
            1024 * (last["peak_mib"] - chunked[-2]["peak_mib"]) / (last["length"] - chunked[-2]["length"]), 2
        ),
        "chunked_memory_growth_longest_over_shortest": round(last["peak_mib"] / max(first["peak_mib"], 1e-3), 2),
        "length_ratio_longest_over_shortest": last["length"] / first["length"],
        "quadratic_memory_growth": round(quadratic[-1]["peak_mib"] / max(quadratic[0]["peak_mib"], 1e-3), 2),
        "quadratic_length_ratio": quadratic[-1]["length"] / quadratic[0]["length"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

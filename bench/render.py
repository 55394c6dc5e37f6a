"""Benchmark the pure-PyTorch CPU rasterizer (lyra.render, backend="torch"); prints JSON.

Cases (each in its own subprocess so peak memory is measured cleanly via
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` before/after rendering):

* forward at 512x512 for 10k, 100k and 1M splats, and the same 100k-splat
  scene at 256x256 and 1024x1024 (pixel scaling, 4x steps) -- ms per frame
  and peak memory delta;
* forward+backward at 256x256 with 50k splats;
* peer: no CPU splat rasterizer from PyPI runs here (gswarp rejects non-CUDA
  tensors, taichi-splatting JIT-compiles CUDA sort kernels at import,
  gausscam needs WebGPU, gaussian-renderer wraps gsplat's CUDA kernels), so the
  baseline is gsplat's own pure-PyTorch reference path
  (``gsplat.cuda._torch_impl``) on CPU, for the stages that run on CPU:
  ``_fully_fused_projection`` + ``_isect_tiles`` + ``_isect_offset_encode``
  (its compositing, ``_rasterize_to_pixels``, calls CUDA-only kernels). We time
  our equivalent stages (projection + tile binning) on the same scene and report
  the ratio, and our full frame time beside it.

Scenes: splats uniformly in the view frustum at depth 2..6, sized so their
screen-space sigma is 0.5-3 px (log-normal anisotropy), opacity 0.1-1, RGB.

Usage: python bench/render.py [--quick] [--threads N]
(--quick: smaller cases, for smoke runs; --threads 1 gives steadier figures on a busy machine)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

CASE_TIMEOUT_S = 240


def make_scene(num_splats: int, size: int, seed: int = 0):
    import torch

    from lyra.render import Camera
    from lyra.scene import Gaussians

    gen = torch.Generator().manual_seed(seed)
    fov = math.radians(60.0)
    focal = 0.5 * size / math.tan(0.5 * fov)
    depth = 2.0 + 4.0 * torch.rand(num_splats, generator=gen)
    xy = (torch.rand(num_splats, 2, generator=gen) * 2 - 1) * depth[:, None] * math.tan(0.5 * fov)
    sigma_px = 0.5 + 2.5 * torch.rand(num_splats, generator=gen)
    scales = (sigma_px * depth / focal)[:, None] * torch.exp(0.3 * torch.randn(num_splats, 3, generator=gen))
    gaussians = Gaussians.from_rgb(
        torch.cat([xy, depth[:, None]], 1), torch.randn(num_splats, 4, generator=gen), scales,
        0.1 + 0.9 * torch.rand(num_splats, generator=gen), torch.rand(num_splats, 3, generator=gen),
    )
    camera = Camera.look_at([0.0, 0.0, 0.0], [0.0, 0.0, 1.0], width=size, height=size, fov_y=fov)
    return gaussians, camera


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


def run_case(case: dict) -> dict:
    import torch

    from lyra.render import render
    from lyra.render.projection import project_gaussians
    from lyra.render.torch_rasterizer import tile_intersections

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    gaussians, camera = make_scene(case["splats"], case.get("scene_size", case["size"]))
    camera = camera.resized(case["size"], case["size"])  # same 3D scene at another resolution
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kind, repeats = case["kind"], case.get("repeats", 2)
    result = dict(case)
    if kind == "forward":
        with torch.no_grad():
            result["ms_per_frame"] = _timed(lambda: render(gaussians, camera, backend="torch"), repeats)
    elif kind == "forward_backward":
        params = [gaussians.means, gaussians.sh, gaussians.opacities, gaussians.scales]
        for p in params:
            p.requires_grad_(True)

        def step():
            out = render(gaussians, camera, backend="torch")
            (out.rgb.mean() + out.depth.mean() * 1e-3).backward()

        result["ms_per_step"] = _timed(step, repeats)
    elif kind in ("peer_gsplat_torch_reference", "ours_projection_binning"):
        w2c, k = camera.w2c(), camera.K()
        size = case["size"]
        if kind == "peer_gsplat_torch_reference":
            from gsplat.cuda._torch_impl import (
                _fully_fused_projection,
                _isect_offset_encode,
                _isect_tiles,
                _quat_scale_to_covar_preci,
            )

            def stages():
                covars, _ = _quat_scale_to_covar_preci(gaussians.quats, gaussians.scales, compute_preci=False)
                radii, means2d, depths, _, _ = _fully_fused_projection(gaussians.means, covars, w2c[None], k[None], size, size)
                tiles = -(-size // 16)
                _, isect_ids, _ = _isect_tiles(means2d, radii, depths, 16, tiles, tiles)
                _isect_offset_encode(isect_ids, 1, tiles, tiles)
        else:

            def stages():
                projected = project_gaussians(
                    gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities, w2c, camera.intrinsics, size, size
                )
                tile_intersections(projected, size, size, 16)

        with torch.no_grad():
            result["ms"] = _timed(stages, repeats)
    result["peak_rss_delta_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024.0
    return result


def available_mib() -> float:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return math.inf


def spawn(case: dict) -> dict:
    # Rough need: ~1.5 KiB per splat (attributes, projection, ~4 tile hits) plus the blocks.
    need_mib = case["splats"] * 1.5 / 1024 * (3 if case["kind"] == "forward_backward" else 1) + 600
    if need_mib > 0.8 * available_mib():
        return {**case, "skipped": f"needs ~{need_mib:.0f} MiB, {available_mib():.0f} MiB available"}
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--case", json.dumps(case)],
            capture_output=True, text=True, timeout=CASE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return {**case, "skipped": f"exceeded {CASE_TIMEOUT_S} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return {**case, "skipped": f"failed (exit {proc.returncode}): {tail[0][:200]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small cases only (smoke run)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (default: torch's default)")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    scale = 10 if args.quick else 1
    forward = [
        {"kind": "forward", "splats": 10_000 // scale, "size": 512},
        {"kind": "forward", "splats": 100_000 // scale, "size": 512},
        {"kind": "forward", "splats": 1_000_000 // scale, "size": 512, "repeats": 1},
        # Pixel scaling: the 512-px scene (same 3D splats) rendered at 1/4 and 4x the pixels.
        {"kind": "forward", "splats": 100_000 // scale, "size": 256, "scene_size": 512},
        {"kind": "forward", "splats": 100_000 // scale, "size": 1024, "scene_size": 512, "repeats": 1},
    ]
    backward = [{"kind": "forward_backward", "splats": 50_000 // scale, "size": 256}]
    peer_splats = 10_000 // scale
    peer = [
        {"kind": "peer_gsplat_torch_reference", "splats": peer_splats, "size": 512, "repeats": 1},
        {"kind": "ours_projection_binning", "splats": peer_splats, "size": 512, "repeats": 3},
    ]
    started = time.perf_counter()
    cases = forward + backward + peer
    if args.threads:
        cases = [{**c, "threads": args.threads} for c in cases]
    results = [spawn(c) for c in cases]
    by = {(r["kind"], r["splats"], r["size"]): r for r in results}

    def ms(kind, splats, size, key="ms_per_frame"):
        return by.get((kind, splats, size), {}).get(key)

    summary = {}
    f10, f100, f1m = (ms("forward", n // scale, 512) for n in (10_000, 100_000, 1_000_000))
    f100_small = ms("forward", 100_000 // scale, 256)
    f100_large = ms("forward", 100_000 // scale, 1024)
    if f10 and f100:
        summary["time_ratio_100k_over_10k_splats"] = round(f100 / f10, 2)
    if f100 and f1m:
        summary["time_ratio_1m_over_100k_splats"] = round(f1m / f100, 2)
    if f100 and f100_small:
        summary["time_ratio_512px_over_256px_4x_pixels"] = round(f100 / f100_small, 2)
    if f100 and f100_large:
        summary["time_ratio_1024px_over_512px_4x_pixels"] = round(f100_large / f100, 2)
    peer_ms = ms("peer_gsplat_torch_reference", peer_splats, 512, "ms")
    ours_ms = ms("ours_projection_binning", peer_splats, 512, "ms")
    if peer_ms and ours_ms:
        summary["peer"] = "gsplat 1.5.3 gsplat.cuda._torch_impl (projection + tile intersection + offsets) on CPU"
        summary["speedup_vs_peer_projection_binning"] = round(peer_ms / ours_ms, 1)
        if ms("forward", peer_splats, 512):
            summary["ours_full_frame_ms_same_scene"] = round(ms("forward", peer_splats, 512), 1)
    print(json.dumps({
        "benchmark": "render_torch_cpu",
        "torch_threads": args.threads or __import__("torch").get_num_threads(),
        "cpu_count": os.cpu_count(),
        "results": results,
        "summary": summary,
        "wall_s": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()

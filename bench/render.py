"""Benchmark the pure-PyTorch CPU rasterizer (lyra.render, backend="torch"); prints JSON.

Cases (each in its own subprocess so peak memory is measured cleanly via
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` before/after rendering):

* forward at 512x512 for 10k, 100k and 1M splats, and the same 100k-splat
  scene at 256x256 and 1024x1024 (pixel scaling, 4x steps) -- ms per frame
  and peak memory delta;
* forward+backward at 256x256 with 50k splats;
* 3DGUT beside EWA (``with_ut=True, with_eval3d=True``, Lyra's look): forward at
  512x512 for 10k, 100k and 1M splats and forward+backward at 256x256 with 50k
  splats. Each pair runs in one subprocess, EWA and 3DGUT alternating
  repeat by repeat (best of each), so that load from other processes hits both
  alike; the ratio 3DGUT / EWA is the figure (target: <= 1.5 at 100k, 512px),
  in wall time and in process CPU time (steadier on a busy machine with --threads 1);
* peer (full frame, same scenes, same run): splax (a JAX + NVIDIA Warp splat
  rasterizer) on Warp's CPU backend, when ``--peer-site DIR`` (or env
  ``LYRA_BENCH_PEER_SITE``) holds it. Each peer case runs in its own subprocess
  with ``PYTHONPATH=DIR`` (JAX and Warp never enter this project's venv), renders
  the same Gaussians from the same camera at the same size, times it the same
  way (best of N after a warm-up that includes Warp's kernel compilation and
  JAX's jit), and reports the PSNR of its image against ours (same SH-to-RGB
  convention, white background, EWA splatting with a 0.3 px dilation, so the
  images agree to ~90+ dB). Forward+backward: ``jax.grad`` of the same loss
  (mean RGB + 1e-3 * mean depth) with respect to means, scales, SH and
  opacities (splax takes log-scales / logit-opacities; the activation is part
  of its timed step). Two CPU settings are needed and are applied at run time,
  not by editing splax: ``warp.config.enable_cpu_blocks = True`` (splax's tile
  kernels assume 256 cooperating threads per block; by default Warp's CPU
  backend runs one, which renders a wrong image) and ``graph_mode=NONE`` for
  splax's projection FFI calls (CUDA-graph capture, rejected by JAX's CPU FFI).
  Install the peer (outside the project venv) with::

      pip install --target /tmp/peer_site --no-deps splax==0.2.3 jax==0.10.2 jaxlib==0.10.2 warp-lang==1.19.0 ml_dtypes==0.6.0 opt_einsum==3.4.0

  (numpy, scipy, imageio and plyfile come from the project venv). Without it the
  JSON says ``"peer": null`` and why. Other PyPI candidates do not render a
  full frame on this CPU: gswarp (rejects non-CUDA tensors, CUDA streams
  throughout), taichi-splatting / splat-viewer (JIT-compile CUDA sort kernels
  at import even with ``ti.init(arch=ti.cpu)``), gausscam (WebGPU only),
  splatstream (Vulkan only), gaussian-renderer (wraps gsplat's CUDA kernels),
  litesplat (dense Keras all-pairs evaluation, a teaching sandbox).
* partial baseline (kept from before the full-frame peer existed): gsplat's
  pure-PyTorch reference path (``gsplat.cuda._torch_impl``) on CPU for the
  stages that run on CPU -- ``_fully_fused_projection`` + ``_isect_tiles`` +
  ``_isect_offset_encode`` (its compositing calls CUDA-only kernels) -- against
  our projection + tile binning on the same scene. Projection + binning only,
  NOT a full frame.

Scenes: splats uniformly in the view frustum at depth 2..6, sized so their
screen-space sigma is 0.5-3 px (log-normal anisotropy), opacity 0.1-1, RGB.

Usage: python bench/render.py [--quick] [--threads N] [--peer-site DIR]
(--quick: smaller cases, for smoke runs; --threads 1 gives steadier figures on a busy machine;
--threads sets torch's threads only, the peer uses JAX/Warp defaults)
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


def _timed_pair(first, second, repeats: int) -> tuple[float, float, float, float]:
    """Best-of-``repeats`` ms of two callables, alternating (after one warm-up each):
    ``(wall first, wall second, cpu first, cpu second)``. The process CPU time is the steadier
    figure on a shared machine (time spent descheduled does not count) when torch runs one thread."""
    first(), second()
    best = [math.inf] * 4
    for _ in range(repeats):
        for i, fn in enumerate((first, second)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
            best[2 + i] = min(best[2 + i], time.process_time() - start_cpu)
    return tuple(b * 1000.0 for b in best)


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


PEER_NAME = "splax"
PEER_INSTALL = (
    "pip install --target DIR --no-deps splax==0.2.3 jax==0.10.2 jaxlib==0.10.2 warp-lang==1.19.0 "
    "ml_dtypes==0.6.0 opt_einsum==3.4.0"
)
PEER_PACKAGES = ("splax", "jax", "jaxlib", "warp-lang")


def import_splax_for_cpu():
    """Import splax from the peer site with the two run-time settings its kernels need on CPU."""
    import warp

    # splax's tile kernels assume 256 threads cooperating per block (shared tiles, per-thread
    # pixels); Warp's CPU backend runs 1 thread per block unless cooperative CPU blocks are on.
    warp.config.enable_cpu_blocks = True
    warp.config.quiet = True
    launch_ffi = warp.jax_callable

    def cpu_jax_callable(*args, **kwargs):
        # CUDA-graph capture (graph_mode=WARP) is CUDA-only; JAX's CPU FFI rejects it.
        if kwargs.get("graph_mode") == warp.JaxCallableGraphMode.WARP:
            kwargs["graph_mode"] = warp.JaxCallableGraphMode.NONE
        return launch_ffi(*args, **kwargs)

    warp.jax_callable = cpu_jax_callable  # splax binds `from warp import jax_callable` at import
    import splax

    return splax


def peer_versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in PEER_PACKAGES}


def run_peer_case(case: dict) -> dict:
    """Time splax on the case's scene (in a subprocess whose PYTHONPATH holds the peer site)."""
    import numpy as np
    import torch

    gaussians, camera = make_scene(case["splats"], case.get("scene_size", case["size"]))
    camera = camera.resized(case["size"], case["size"])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    splax = import_splax_for_cpu()
    import jax
    import jax.numpy as jnp

    size, (fx, fy, cx, cy) = case["size"], camera.intrinsics.tolist()
    opacities = gaussians.opacities.clamp(1e-6, 1 - 1e-6)
    inputs = [jnp.asarray(t.detach().float().numpy()) for t in (
        gaussians.means, gaussians.scales.log(), gaussians.quats, gaussians.sh, torch.logit(opacities),
    )]
    viewmat = jnp.asarray(camera.w2c().float().numpy())

    def splat(means, log_scales, quats, sh, logit_opacities, render_depth=False):
        return splax.render(
            means, log_scales, quats, sh, logit_opacities, viewmat=viewmat, background=jnp.ones(3),
            img_shape=(size, size), f=(fx, fy), c=(cx, cy), clip_thresh=0.01, render_depth=render_depth,
        )

    forward = jax.jit(lambda *params: splat(*params)[0])
    result = {**case, "peer_name": PEER_NAME, "peer_versions": peer_versions(), "jax_devices": str(jax.devices())}
    if case["kind"] == "peer_forward":
        result["ms_per_frame"] = _timed(lambda: forward(*inputs).block_until_ready(), case.get("repeats", 3))
    else:

        def loss(means, log_scales, quats, sh, logit_opacities):
            image = splat(means, log_scales, quats, sh, logit_opacities, render_depth=True)[0]
            return image[..., :3].mean() + image[..., 3].mean() * 1e-3

        grad = jax.jit(jax.grad(loss, argnums=(0, 1, 3, 4)))
        result["ms_per_step"] = _timed(lambda: jax.block_until_ready(grad(*inputs)), case.get("repeats", 3))
    result["peak_rss_delta_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024.0
    # Like with like: the peer's image against ours (untimed), same scene and camera.
    from lyra.render import render

    with torch.no_grad():
        ours = render(gaussians, camera, backend="torch").rgb.numpy()
    theirs = np.clip(np.asarray(forward(*inputs)), 0.0, 1.0)
    mse = float(np.mean((theirs - ours) ** 2))
    result["psnr_vs_ours_db"] = round(10 * math.log10(1.0 / mse), 1) if mse > 0 else math.inf
    return result


def run_case(case: dict) -> dict:
    if case["kind"] == "peer_probe":
        import_splax_for_cpu()
        return {**case, "peer_versions": peer_versions()}
    if case["kind"] in ("peer_forward", "peer_forward_backward"):
        return run_peer_case(case)
    import torch

    from lyra.render import render
    from lyra.render.projection import project_gaussians
    from lyra.render.torch_rasterizer import tile_intersections

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    gaussians, camera = make_scene(case["splats"], case.get("scene_size", case["size"]))
    camera = camera.resized(case["size"], case["size"])  # same 3D scene at another resolution
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kind, repeats = case["kind"], case.get("repeats", 3)
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
    elif kind in ("ewa_vs_3dgut_forward", "ewa_vs_3dgut_forward_backward"):
        gut = dict(with_ut=True, with_eval3d=True)
        if kind == "ewa_vs_3dgut_forward":

            def run(**flags):
                with torch.no_grad():
                    render(gaussians, camera, backend="torch", **flags)
        else:
            params = [gaussians.means, gaussians.sh, gaussians.opacities, gaussians.scales, gaussians.quats]
            for p in params:
                p.requires_grad_(True)

            def run(**flags):
                out = render(gaussians, camera, backend="torch", **flags)
                (out.rgb.mean() + out.depth.mean() * 1e-3).backward()

        ewa_ms, gut_ms, ewa_cpu, gut_cpu = _timed_pair(lambda: run(), lambda: run(**gut), repeats)
        if kind == "ewa_vs_3dgut_forward_backward":
            # Whether each path recomputes blocks in backward (the same memory budget for both;
            # UT's gsplat-rule extents are whole pixels, so it has a few % more intersections).
            from lyra.render import torch_rasterizer
            from lyra.render.ut_projection import project_gaussians_ut

            with torch.no_grad():
                for name, project in (("ewa", project_gaussians), ("ut_eval3d", project_gaussians_ut)):
                    projected = project(gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
                                        camera.w2c(), camera.intrinsics, case["size"], case["size"])
                    count = len(tile_intersections(projected, case["size"], case["size"])[0])
                    saved = 3 * count * 64 * gaussians.means.element_size()
                    result[f"{name}_intersections"] = count
                    result[f"{name}_recomputes_in_backward"] = saved > torch_rasterizer.RECOMPUTE_ABOVE_BYTES
            # Like with like: both keeping their blocks for backward (no recompute).
            budget, torch_rasterizer.RECOMPUTE_ABOVE_BYTES = torch_rasterizer.RECOMPUTE_ABOVE_BYTES, math.inf
            _, _, ewa_cpu_kept, gut_cpu_kept = _timed_pair(lambda: run(), lambda: run(**gut), repeats)
            torch_rasterizer.RECOMPUTE_ABOVE_BYTES = budget
            result["ratio_ut_over_ewa_cpu_both_keeping_blocks"] = round(gut_cpu_kept / ewa_cpu_kept, 2)
        result.update(
            ewa_ms=round(ewa_ms, 1), ut_eval3d_ms=round(gut_ms, 1), ratio_ut_over_ewa=round(gut_ms / ewa_ms, 2),
            ewa_cpu_ms=round(ewa_cpu, 1), ut_eval3d_cpu_ms=round(gut_cpu, 1),
            ratio_ut_over_ewa_cpu=round(gut_cpu / ewa_cpu, 2),
        )
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


def peer_env(site: str) -> dict:
    """Environment for a peer subprocess: the peer site first on PYTHONPATH, JAX on CPU."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [site, env.get("PYTHONPATH")]))
    env["JAX_PLATFORMS"] = "cpu"
    env["SCIPY_ARRAY_API"] = "1"  # splax refuses to import unless scipy's array API flag is set first
    return env


def spawn(case: dict, env: dict | None = None) -> dict:
    # Rough need: ~1.5 KiB per splat (attributes, projection, ~4 tile hits) plus the blocks.
    backward = case["kind"] in ("forward_backward", "peer_forward_backward", "ewa_vs_3dgut_forward_backward")
    need_mib = case["splats"] * 1.5 / 1024 * (3 if backward else 1) + 600
    if need_mib > 0.8 * available_mib():
        return {**case, "skipped": f"needs ~{need_mib:.0f} MiB, {available_mib():.0f} MiB available"}
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--case", json.dumps(case)],
            capture_output=True, text=True, timeout=CASE_TIMEOUT_S, env=env,
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
    parser.add_argument("--only-3dgut", action="store_true", help="only the EWA vs 3DGUT pairs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per case (default: torch's default)")
    parser.add_argument(
        "--peer-site", default=os.environ.get("LYRA_BENCH_PEER_SITE"),
        help="folder holding the peer (splax + jax + warp-lang; see the docstring), default $LYRA_BENCH_PEER_SITE",
    )
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    scale = 10 if args.quick else 1
    forward = [
        {"kind": "forward", "splats": 10_000 // scale, "size": 512},
        {"kind": "forward", "splats": 100_000 // scale, "size": 512},
        {"kind": "forward", "splats": 1_000_000 // scale, "size": 512, "repeats": 2},
        # Pixel scaling: the 512-px scene (same 3D splats) rendered at 1/4 and 4x the pixels.
        {"kind": "forward", "splats": 100_000 // scale, "size": 256, "scene_size": 512},
        {"kind": "forward", "splats": 100_000 // scale, "size": 1024, "scene_size": 512, "repeats": 2},
    ]
    backward = [{"kind": "forward_backward", "splats": 50_000 // scale, "size": 256}]
    gut = [
        {"kind": "ewa_vs_3dgut_forward", "splats": 10_000 // scale, "size": 512, "repeats": 7},
        {"kind": "ewa_vs_3dgut_forward", "splats": 100_000 // scale, "size": 512, "repeats": 5},
        {"kind": "ewa_vs_3dgut_forward", "splats": 1_000_000 // scale, "size": 512, "repeats": 2},
        {"kind": "ewa_vs_3dgut_forward_backward", "splats": 50_000 // scale, "size": 256},
    ]
    peer_splats = 10_000 // scale
    peer = [
        {"kind": "peer_gsplat_torch_reference", "splats": peer_splats, "size": 512, "repeats": 1},
        {"kind": "ours_projection_binning", "splats": peer_splats, "size": 512, "repeats": 3},
    ]
    started, load_at_start = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    cases = forward + backward + gut + peer
    if args.only_3dgut:
        cases = gut
    if args.threads:
        cases = [{**c, "threads": args.threads} for c in cases]
    env, peer_reason = None, None
    if not args.peer_site:
        peer_reason = f"no --peer-site DIR / LYRA_BENCH_PEER_SITE given (install: {PEER_INSTALL})"
    else:
        env = peer_env(os.path.abspath(args.peer_site))
        probe = spawn({"kind": "peer_probe", "splats": 0, "size": 0}, env)
        if "skipped" in probe:
            peer_reason = f"{PEER_NAME} does not import from {args.peer_site}: {probe['skipped']}"
            env = None
    results = []
    for case in cases:  # ours, then the peer on the same scene, case by case
        results.append(spawn(case))
        if env is not None and case["kind"] in ("forward", "forward_backward"):
            results.append(spawn({**case, "kind": "peer_" + case["kind"]}, env))
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
    summary["ut_eval3d_vs_ewa"] = [
        {"case": f"{r['kind'].removeprefix('ewa_vs_3dgut_')} {r['splats']} splats {r['size']}px",
         **{k: r.get(k) for k in ("ewa_ms", "ut_eval3d_ms", "ratio_ut_over_ewa", "ewa_cpu_ms", "ut_eval3d_cpu_ms",
                                   "ratio_ut_over_ewa_cpu", "ewa_recomputes_in_backward",
                                   "ut_eval3d_recomputes_in_backward", "ratio_ut_over_ewa_cpu_both_keeping_blocks",
                                   "skipped") if k in r}}
        for r in results if r["kind"].startswith("ewa_vs_3dgut")
    ]
    summary["peer"] = None
    if env is not None:
        versions = probe["peer_versions"]
        summary["peer"] = summary["peer_name"] = f"{PEER_NAME} {versions['splax']} (jax {versions['jax']} CPU, " \
            f"warp-lang {versions['warp-lang']} CPU backend, cooperative CPU blocks)"
        per_case = []
        for case in forward + backward:
            key = "ms_per_step" if case["kind"] == "forward_backward" else "ms_per_frame"
            peer_result = by.get(("peer_" + case["kind"], case["splats"], case["size"]), {})
            ours, theirs = ms(case["kind"], case["splats"], case["size"], key), peer_result.get(key)
            row = {"case": f"{case['kind']} {case['splats']} splats {case['size']}px", "ours_ms": ours, "peer_ms": theirs}
            if ours and theirs:
                row["speedup_vs_peer"] = round(theirs / ours, 2)  # > 1: ours is faster
                row["peer_psnr_vs_ours_db"] = peer_result.get("psnr_vs_ours_db")
            else:
                row["missing"] = peer_result.get("skipped") or by.get((case["kind"], case["splats"], case["size"]), {}).get("skipped")
            per_case.append(row)
        summary["vs_peer"] = per_case
    else:
        summary["peer_reason"] = peer_reason
    peer_ms = ms("peer_gsplat_torch_reference", peer_splats, 512, "ms")
    ours_ms = ms("ours_projection_binning", peer_splats, 512, "ms")
    if peer_ms and ours_ms:
        summary["partial_peer"] = (
            "PARTIAL (projection + tile binning only, not a full frame): gsplat 1.5.3 "
            "gsplat.cuda._torch_impl (projection + tile intersection + offsets) on CPU"
        )
        summary["speedup_vs_peer_projection_binning"] = round(peer_ms / ours_ms, 1)
        if ms("forward", peer_splats, 512):
            summary["ours_full_frame_ms_same_scene"] = round(ms("forward", peer_splats, 512), 1)
    print(json.dumps({
        "benchmark": "render_torch_cpu",
        "torch_threads": args.threads or __import__("torch").get_num_threads(),
        "cpu_count": os.cpu_count(),
        # Other processes on the cores distort the figures (torch's OpenMP threads spin at
        # barriers while a sibling thread is descheduled); --threads 1 is steadier then.
        "load_average_at_start": load_at_start,
        "results": results,
        "summary": summary,
        "wall_s": round(time.perf_counter() - started, 1),
    }, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()

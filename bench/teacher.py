"""Benchmarks of the GEN3C teacher's CPU-side work (prints JSON only).

Times are given as wall clock and as this process's CPU time (``time.process_time``):
on a shared, loaded machine the CPU time is the stable figure (with ``--threads 1`` it is
what the wall time would be on one idle core).

* ``cache_warp``: :meth:`lyra.teacher.cache3d.Cache3D.render` of one buffer into
  121 target cameras at 704 x 1280 (a "left" trajectory over a synthetic scene
  with depth edges), with and without the foreground-masking occlusion test,
  against a plain per-point scatter baseline (every point, four accumulating
  ``index_put_`` calls, the official structure) measured on a few frames in the
  same run; the ratio is per frame.
* ``sampler_overhead``: the time per step that :func:`lyra.teacher.gen3c.sample`
  spends outside the network (a stub network that returns zeros), at the
  full latent size [1, 16, 16, 88, 160], against the bare Euler update
  ``x + d * dt`` on the same tensors.

Run: ``python bench/teacher.py [--quick] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from lyra.render.camera import intrinsics_matrix
from lyra.render.trajectories import lyra_trajectory
from lyra.teacher.cache3d import Cache3D
from lyra.teacher.gen3c import sample
from lyra.teacher.warp import project, soft_zbuffer_weights

H, W = 704, 1280


def synthetic_scene(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A textured image, a depth map with a slanted ground, a far wall and boxes (edges), and intrinsics."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, H, W, generator=g) * 2 - 1
    y = torch.arange(H, dtype=torch.float32)[:, None].expand(H, W)
    depth = torch.where(y > H / 2, 1.0 + 200.0 / (y - H / 2 + 40.0), torch.full((H, W), 6.0))
    for top, left, size, z in [(200, 300, 180, 1.5), (350, 800, 150, 2.2), (100, 1000, 120, 3.0)]:
        depth[top : top + size, left : left + size] = z
    intrinsics = torch.tensor([1000.0, 1000.0, W / 2, H / 2])
    return image, depth, intrinsics


def per_point_scatter(points, colors, mask, w2c, K, log_max):
    """Baseline: all points, four accumulating index_put_ (frame and weights), no culling."""
    colors = colors.T  # [P, 3]
    u, v, z = project(points, w2c, K)
    weight = mask * (z > 0) * soft_zbuffer_weights(z, log_max)
    ou, ov = (u + 1).clamp(0, W + 1), (v + 1).clamp(0, H + 1)
    fu, fv = torch.floor(u + 1).clamp(0, W + 1).long(), torch.floor(v + 1).clamp(0, H + 1).long()
    cu, cv = torch.ceil(u + 1).clamp(0, W + 1).long(), torch.ceil(v + 1).clamp(0, H + 1).long()
    frame = torch.zeros(H + 2, W + 2, 3)
    weights = torch.zeros(H + 2, W + 2)
    for yy, xx, prox in [
        (fv, fu, (1 - (ov - fv)) * (1 - (ou - fu))),
        (cv, fu, (1 - (cv - ov)) * (1 - (ou - fu))),
        (fv, cu, (1 - (ov - fv)) * (1 - (cu - ou))),
        (cv, cu, (1 - (cv - ov)) * (1 - (cu - ou))),
    ]:
        w = prox * weight
        frame.index_put_((yy, xx), colors * w[:, None], accumulate=True)
        weights.index_put_((yy, xx), w, accumulate=True)
    weights = weights[1:-1, 1:-1]
    hit = weights > 0
    return torch.where(hit[..., None], frame[1:-1, 1:-1] / weights.clamp(min=1e-30)[..., None], -1.0), hit


def bench_cache(num_frames: int, baseline_frames: int) -> dict:
    image, depth, intrinsics = synthetic_scene()
    camera = lyra_trajectory("left", num_frames, distance=0.25, width=W, height=H, intrinsics=intrinsics)
    w2cs = torch.linalg.inv(camera.c2w)
    out: dict = {"frames": num_frames, "size": [H, W]}
    for occlusion in (False, True):
        cache = Cache3D(image, depth, intrinsics, foreground_masking=occlusion)
        wall, cpu = time.perf_counter(), time.process_time()
        cache.render(w2cs, camera.intrinsics, occlusion=occlusion)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        key = "ours_occlusion" if occlusion else "ours"
        out[f"{key}_wall_s"] = round(wall, 3)
        out[f"{key}_cpu_s"] = round(cpu, 3)
        out[f"{key}_cpu_ms_per_frame"] = round(1000 * cpu / num_frames, 2)
    buf = Cache3D(image, depth, intrinsics, foreground_masking=False).buffers[0]
    K = intrinsics_matrix(intrinsics)
    wall, cpu = time.perf_counter(), time.process_time()
    for f in range(baseline_frames):
        z = project(buf.points, w2cs[f], K)[2]
        per_point_scatter(buf.points, buf.colors, buf.mask, w2cs[f], K, torch.log1p(z.clamp(min=0)).max())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out["baseline_per_point_scatter_wall_ms_per_frame"] = round(1000 * wall / baseline_frames, 2)
    out["baseline_per_point_scatter_cpu_ms_per_frame"] = round(1000 * cpu / baseline_frames, 2)
    out["baseline_frames_measured"] = baseline_frames
    out["speedup_vs_baseline_cpu_time_no_occlusion"] = round(
        out["baseline_per_point_scatter_cpu_ms_per_frame"] / out["ours_cpu_ms_per_frame"], 2
    )
    out["target_wall_s_on_2_idle_cores"] = 10.0
    return out


class ZeroNet(torch.nn.Module):
    """A stand-in denoiser: returns zeros instantly, so only the sampler's own work is timed."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, hidden_states, **kwargs):
        return (torch.zeros_like(hidden_states),)


def bench_sampler(num_steps: int) -> dict:
    shape = (1, 16, 16, 88, 160)
    g = torch.Generator().manual_seed(0)
    args = dict(
        condition_latent=torch.randn(shape, generator=g),
        condition_pose=torch.randn(1, 64, *shape[2:], generator=g),
        text_embeds=torch.randn(1, 512, 1024, generator=g),
        negative_text_embeds=torch.randn(1, 512, 1024, generator=g),
        noise=torch.randn(shape, generator=g),
    )
    start = time.process_time()
    sample(ZeroNet(), num_steps=num_steps, **args)
    per_step = (time.process_time() - start) / num_steps
    x, d = torch.randn(shape), torch.randn(shape)
    start = time.process_time()
    for _ in range(num_steps):
        x = x + d * 0.01
    bare = (time.process_time() - start) / num_steps
    return {
        "latent_shape": list(shape),
        "steps": num_steps,
        "cpu_ms_per_step_outside_network": round(1000 * per_step, 2),
        "baseline_bare_euler_update_cpu_ms": round(1000 * bare, 2),
        "ratio": round(per_step / bare, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and steps")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the target is 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = 25 if args.quick else 121
    result = {
        "machine": {"threads": args.threads, "load_avg": os.getloadavg(), "python": platform.python_version()},
        "cache_warp": bench_cache(frames, 3 if args.quick else 8),
        "sampler_overhead": bench_sampler(5 if args.quick else 35),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark the selection and edit primitives the viewer calls on every click.

Prints JSON: median milliseconds per call at N splats (default one million,
SH degree 3 like a trained scene), next to a baseline measured in the same run
(a straightforward numpy float64 box and sphere select). The viewer's target
is box select, delete and undo each under 50 ms at 1M splats; delete and
undo are a mask flip in the viewer (soft delete), ``g[~mask]`` is the copy
made at export.

    python bench/edit.py [--n 1000000] [--repeats 7] [--threads T] [--floaters]

On a machine busy with other work, ``--threads 1`` gives steadier figures
(intra-op threads then wait on the scheduler); the load average is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time

import numpy as np
import torch

from lyra.edit.floaters import floater_mask
from lyra.edit.ops import rotate, translate
from lyra.edit.select import (
    combine,
    opacity_below,
    pick_nearest_on_ray,
    select_box,
    select_screen_rect,
    select_sphere,
)
from lyra.scene import quats_to_rotmats
from lyra.scene.synthetic import random_gaussians


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return round(statistics.median(times), 3)


def numpy_float64_box(means: np.ndarray, center, rot: np.ndarray, half) -> np.ndarray:
    """Baseline: the obvious numpy version (float64 throughout)."""
    local = (means.astype(np.float64) - np.asarray(center, np.float64)) @ rot.astype(np.float64)
    return np.all(np.abs(local) <= np.asarray(half, np.float64), axis=1)


def numpy_float64_sphere(means: np.ndarray, center, radius: float) -> np.ndarray:
    d = means.astype(np.float64) - np.asarray(center, np.float64)
    return np.sqrt((d * d).sum(axis=1)) <= radius


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--floaters", action="store_true", help="also time floater_mask (several seconds)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    g = random_gaussians(args.n, sh_degree=3, max_scale=0.02, sh_std=0.2)
    means_np = g.means.numpy()
    center, half = [0.1, 0.2, -0.1], [0.8, 0.5, 0.6]
    wxyz = [math.cos(0.3), 0.0, math.sin(0.3), 0.0]
    rot_np = quats_to_rotmats(torch.tensor(wxyz)).numpy()
    c2w = torch.eye(4)
    c2w[2, 3] = -4.0
    intrinsics = [800.0, 800.0, 640.0, 360.0]
    box = select_box(g.means, center, wxyz, half)
    assert np.array_equal(box.numpy(), numpy_float64_box(means_np, center, rot_np, half)), "box selects differ"
    other = select_sphere(g.means, [0, 0, 0], 1.0)
    deleted = torch.zeros(args.n, dtype=torch.bool)

    def flip_mask() -> None:  # the viewer's soft delete / undo: deleted |= selection, then restore
        deleted[box] = True
        deleted[box] = False

    timings = {
        "select_box": median_ms(lambda: select_box(g.means, center, wxyz, half), args.repeats),
        "baseline_numpy_float64_box": median_ms(
            lambda: numpy_float64_box(means_np, center, rot_np, half), args.repeats
        ),
        "select_sphere": median_ms(lambda: select_sphere(g.means, [0, 0, 0], 1.0), args.repeats),
        "baseline_numpy_float64_sphere": median_ms(
            lambda: numpy_float64_sphere(means_np, [0, 0, 0], 1.0), args.repeats
        ),
        "select_screen_rect": median_ms(
            lambda: select_screen_rect(g.means, c2w, intrinsics, 1280, 720, (300, 100, 900, 600)), args.repeats
        ),
        "pick_nearest_on_ray": median_ms(
            lambda: pick_nearest_on_ray(g.means, [0, 0, -5], [0, 0, 1], scales=g.scales), args.repeats
        ),
        "opacity_below": median_ms(lambda: opacity_below(g, 0.05), args.repeats),
        "combine_add": median_ms(lambda: combine(box, other, "add"), args.repeats),
        "delete_by_copy_g[~mask]": median_ms(lambda: g[~box], args.repeats),
        "mask_flip_soft_delete_and_undo": median_ms(flip_mask, args.repeats),
        "translate_selection": median_ms(lambda: translate(g, box, [0.1, 0, 0]), args.repeats),
        "rotate_selection_with_sh3": median_ms(lambda: rotate(g, box, wxyz, center), args.repeats),
    }
    if args.floaters:
        timings["floater_mask_k16"] = median_ms(lambda: floater_mask(g.means), 1)
    result = {
        "benchmark": "edit",
        "n": args.n,
        "sh_degree": g.sh_degree,
        "box_selected": int(box.sum()),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "unit": "ms (median)",
        "timings_ms": timings,
        "box_speedup_vs_numpy_float64": round(timings["baseline_numpy_float64_box"] / timings["select_box"], 2),
        "sphere_speedup_vs_numpy_float64": round(
            timings["baseline_numpy_float64_sphere"] / timings["select_sphere"], 2
        ),
        "target_ms": 50.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

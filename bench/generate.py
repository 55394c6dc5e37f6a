"""Benchmark image -> scene generation on CPU; prints JSON only.

* ``lift``: :func:`lyra.pipeline.lift_image` at 704x1280 (Lyra's resolution), excluding the depth
  network: best-of-N seconds and the splat count, against a named baseline measured in the same run:
  ``unproject_only``, the bare per-pixel unprojection (points, no shapes, no opacities), so the ratio
  shows what the Gaussian shapes and edge opacities cost on top of the geometry every lift needs.
* ``pipeline`` (when the Lyra pipeline is importable): per-stage wall times of
  :func:`lyra.pipeline.generate.generate_scene` with tiny random models, and the share of the run
  spent outside the networks.

Usage: python bench/generate.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_lift(height: int, width: int, repeats: int) -> dict:
    from lyra.pipeline import lift_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    # A scene-like depth: a slanted floor with a box in front (real edges for the opacity rule).
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    depth = np.broadcast_to(4.0 - 2.0 * rows, (height, width)).copy()
    depth[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = 1.5
    focal = 0.5 * width / np.tan(np.radians(30.0))
    intrinsics = [focal, focal, width / 2, height / 2]
    lift_image(image, depth, intrinsics)  # warm-up
    seconds = best_of(lambda: lift_image(image, depth, intrinsics), repeats)
    count = len(lift_image(image, depth, intrinsics))

    def unproject_only():
        z = torch.from_numpy(depth)
        v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
        return torch.stack([(u - intrinsics[2]) / focal * z, (v - intrinsics[3]) / focal * z, z], -1)

    baseline = best_of(unproject_only, repeats)
    return {
        "size": [height, width],
        "seconds": round(seconds, 4),
        "splats": count,
        "target_seconds": 2.0,
        "baseline": {"name": "unproject_only", "seconds": round(baseline, 4)},
        "ratio_to_baseline": round(seconds / baseline, 2),
    }


def bench_pipeline() -> dict | None:
    try:
        from lyra.pipeline.generate import bench_tiny_pipeline
    except ImportError as exc:  # the teacher (GEN3C) is not in this checkout
        return {"skipped": f"pipeline not available: {exc}"}
    return bench_tiny_pipeline()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "threads": torch.get_num_threads(),
        "lift": bench_lift(704, 1280, 2 if args.quick else 5),
        "pipeline": bench_pipeline(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""``lyra mesh`` and ``lyra share`` on a 1M-splat scene: times, file sizes, peak memory.

Prints one JSON object. The scene: flat splats on a sphere, a box and a ground disc (the demo
primitives, ``lyra.scene.procedural``), ``--splats`` in all. Baseline in the same run: writing the scene
as a 3DGS PLY (``lyra.scene.save``), the export a user would otherwise make. Measured:

* mesh: opacity field on a ``--resolution`` grid + marching cubes + cleanup + colours, then the same
  decimated to ``--faces``; the collider; the PLY and GLB sizes;
* share: the page at the default 50 MB budget, and at ``--small-mb`` (decimated to fit).

Usage: ``python bench/mesh_share.py [--splats 1000000] [--resolution 256] [--faces 200000] [--small-mb 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import torch

from lyra.render.share import share_page
from lyra.scene import Gaussians, save
from lyra.scene.mesh import collider_from_gaussians, mesh_from_gaussians, write_mesh
from lyra.scene.procedural import box, disc, sphere


def bench_scene(n: int) -> Gaussians:
    gen = torch.Generator().manual_seed(0)
    shade = lambda p: (0.5 + 0.4 * torch.sin(4 * p)).clamp(0, 1)  # noqa: E731
    parts = [sphere(torch.tensor([0.0, 0.6, 0.0]), 0.6, int(0.4 * n), shade),
             box(torch.tensor([1.2, 0.4, 0.3]), torch.tensor([0.4, 0.4, 0.4]), 0.4, int(0.3 * n) // 6, shade),
             disc(2.5, int(0.3 * n), shade, gen)]
    return Gaussians.cat(parts)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splats", type=int, default=1_000_000)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--faces", type=int, default=200_000)
    parser.add_argument("--small-mb", type=float, default=10.0)
    args = parser.parse_args()
    g = bench_scene(args.splats)
    out = {"splats": len(g), "resolution": args.resolution}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _, out["baseline_save_ply_s"] = timed(lambda: save(g, tmp / "scene.ply"))
        out["baseline_ply_mb"] = round((tmp / "scene.ply").stat().st_size / 1e6, 1)
        mesh, out["mesh_s"] = timed(lambda: mesh_from_gaussians(g, resolution=args.resolution))
        out["mesh_faces"], out["mesh_watertight"] = len(mesh.faces), bool(mesh.is_watertight)
        _, out["mesh_write_ply_s"] = timed(lambda: write_mesh(mesh, tmp / "mesh.ply"))
        write_mesh(mesh, tmp / "mesh.glb")
        out["mesh_ply_mb"] = round((tmp / "mesh.ply").stat().st_size / 1e6, 1)
        out["mesh_glb_mb"] = round((tmp / "mesh.glb").stat().st_size / 1e6, 1)
        small, out["mesh_decimated_s"] = timed(lambda: mesh_from_gaussians(g, resolution=args.resolution,
                                                                           max_faces=args.faces))
        out["mesh_decimated_faces"] = len(small.faces)
        (_, faces), out["collider_s"] = timed(lambda: collider_from_gaussians(g))
        out["collider_faces"] = len(faces)
        page, out["share_s"] = timed(lambda: share_page(g))
        out["share_mb"], out["share_splats"] = round(page.size_bytes / 1e6, 1), sum(page.splats)
        small_page, out["share_small_s"] = timed(lambda: share_page(g, max_mb=args.small_mb))
        out["share_small_budget_mb"] = args.small_mb
        out["share_small_mb"], out["share_small_splats"] = round(small_page.size_bytes / 1e6, 1), sum(small_page.splats)
    out["mesh_vs_ply_save_time"] = round(out["mesh_s"] / max(out["baseline_save_ply_s"], 1e-3), 1)
    out["share_vs_ply_save_time"] = round(out["share_s"] / max(out["baseline_save_ply_s"], 1e-3), 1)
    out["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    out["torch_threads"] = torch.get_num_threads()
    out["load_average_1min"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

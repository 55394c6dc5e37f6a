"""glTF and USD save/load on an SH-degree-3 scene, against our PLY (the baseline) in the same run.

Prints one JSON object: for ``.ply`` (baseline), ``.glb``, ``.usdc`` and ``.usdz``, the save and
load seconds, the file size, and the ratios to PLY; for USD the load includes starting usd-core in
its child process (lyra/scene/formats/usd_stage_reader.py). Also a 4D clip of ``--frames`` frames
as one time-sampled ``.usdz`` against a PLY sequence folder.
Usage: ``python bench/export_formats.py [--splats 1000000] [--frames 4] [--clip-splats 100000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from lyra.scene import Gaussians, GaussianSequence, load, save


def scene(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(torch.randn(n, 3, generator=gen), torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
                     torch.rand(n, 3, generator=gen) * 0.05 + 0.005, torch.rand(n, generator=gen) * 0.9 + 0.05,
                     (torch.rand(n, 16, 3, generator=gen) - 0.5) * 0.6)


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure(obj, folder: Path, name: str) -> dict:
    path = folder / name
    save_s, _ = timed(lambda: save(obj, path))
    load_s, loaded = timed(lambda: load(path))
    if isinstance(loaded, GaussianSequence):
        _ = [len(f) for f in loaded.frames]  # lazy sequences: count the reading
    return {"save_s": round(save_s, 3), "load_s": round(load_s, 3), "bytes": size(path)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splats", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--clip-splats", type=int, default=100_000)
    args = parser.parse_args()
    g = scene(args.splats)
    clip = GaussianSequence([scene(args.clip_splats, seed=i) for i in range(args.frames)], fps=24)
    out: dict = {"splats": args.splats, "sh_degree": 3, "load_avg": os.getloadavg(), "static": {}, "clip": {}}
    with tempfile.TemporaryDirectory(prefix="lyra-bench-") as tmp:
        folder = Path(tmp)
        for name in ("scene.ply", "scene.glb", "scene.usdc", "scene.usdz"):
            out["static"][name] = measure(g, folder, name)
            (folder / name).unlink()
        base = out["static"]["scene.ply"]
        for row in out["static"].values():
            row["vs_ply"] = {k: round(row[k] / max(base[k], 1e-9), 2) for k in ("save_s", "load_s", "bytes")}
        out["clip"] = {"frames": args.frames, "splats_per_frame": args.clip_splats,
                       "ply_folder": measure(clip, folder, "clip_ply"), "usdz": measure(clip, folder, "clip.usdz")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

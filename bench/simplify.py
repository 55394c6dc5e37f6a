"""Decimation (``lyra.edit.simplify``) from 2M to 500k splats: time, and render PSNR against the baseline.

Prints one JSON object. The scene: small flat splats on a textured wavy sheet
(what generated scenes are made of). Baseline in the same run: keep the 500k
most opaque splats (``drop_lowest_opacity``). PSNR of each against the render
of the full scene, torch backend, mean over ``--views`` cameras.
Usage: ``python bench/simplify.py [--splats 2000000] [--target 500000] [--size 160]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import torch

from lyra.edit.simplify import drop_lowest_opacity, simplify
from lyra.render import Camera, render
from lyra.scene import Gaussians


def sheet(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    uv = torch.rand(n, 2, generator=gen) * 2 - 1
    z = 0.1 * torch.sin(3 * uv[:, 0]) * torch.cos(2 * uv[:, 1])
    rgb = torch.stack([0.5 + 0.4 * torch.sin(9 * uv[:, 0]), 0.5 + 0.4 * torch.cos(7 * uv[:, 1]),
                       0.5 + 0.3 * torch.sin(5 * (uv[:, 0] + uv[:, 1]))], 1)
    side = 2.0 / math.sqrt(n)  # splat size follows the sampling density
    scales = (torch.rand(n, 3, generator=gen) + 0.75) * side
    scales[:, 2] *= 0.2
    quats = torch.tensor([1.0, 0, 0, 0]).expand(n, 4).clone()
    return Gaussians.from_rgb(torch.cat([uv, z[:, None]], 1), quats, scales, torch.rand(n, generator=gen) * 0.4 + 0.1, rgb)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10((a - b).pow(2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splats", type=int, default=2_000_000)
    parser.add_argument("--target", type=int, default=500_000)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--views", type=int, default=2)
    args = parser.parse_args()
    g = sheet(args.splats)
    start = time.perf_counter()
    ours = simplify(g, args.target)
    simplify_s = time.perf_counter() - start
    start = time.perf_counter()
    baseline = drop_lowest_opacity(g, args.target)
    baseline_s = time.perf_counter() - start
    cams = [Camera.look_at([0.5 * math.sin(a), -0.6, 2.0], [0, 0, 0], width=args.size, height=args.size)
            for a in torch.linspace(-0.5, 0.5, args.views).tolist()]
    ours_psnr, base_psnr = [], []
    with torch.no_grad():
        for cam in cams:
            full = render(g, cam, backend="torch").rgb
            ours_psnr.append(psnr(render(ours, cam, backend="torch").rgb, full))
            base_psnr.append(psnr(render(baseline, cam, backend="torch").rgb, full))
    print(json.dumps({
        "splats": args.splats, "target": args.target, "result_splats": len(ours),
        "simplify_s": round(simplify_s, 2), "baseline_drop_lowest_opacity_s": round(baseline_s, 3),
        "psnr_simplify_db": round(sum(ours_psnr) / len(ours_psnr), 2),
        "psnr_baseline_db": round(sum(base_psnr) / len(base_psnr), 2),
        "psnr_gain_db": round((sum(ours_psnr) - sum(base_psnr)) / len(ours_psnr), 2),
        "image_size": args.size, "views": args.views, "load_average_1min": os.getloadavg()[0],
    }, indent=1))


if __name__ == "__main__":
    main()

"""Benchmark the image lift on a real stereo pair, the previous lift beside it; prints JSON.

The pair is Middlebury 2014 "Motorcycle" as bundled in scikit-image (no download): the left
photo is lifted with its ground-truth depth and rendered from the right camera (193 mm to the
right), which nobody on the team rendered. Figures, for the previous lift ("ray_discs_0.25": one
disc per pixel facing its view ray, 0.25 px) and the current one (surfels, :mod:`lyra.pipeline.lift`):

* ``psnr_right_covisible``: PSNR against the right photo over the right-view pixels that see a
  surface the left view has a depth for (moved over by the depth, z-buffered). A lift that lets
  the white background through there (holes, see-through discs) pays for it;
* ``psnr_right_alpha_masked``: the same, only where every compared render is opaque (alpha > 0.95):
  sharpness without the holes, the figure the previous test used;
* ``covered_right``: share of the co-visible pixels a render covers (alpha > 0.95);
* ``psnr_input``: the left photo from its own camera (valid-depth pixels);
* ``ray_discs_0.35``: the previous ray-facing discs at the current lift's full-resolution size, to
  separate orientation from size.

``--size half`` (default: the pair down-sampled 2x more, 370 x 250, as tests/pipeline/test_lift.py)
or ``full`` (741 x 500, where the automatic ``pixels_per_splat`` is 2; adds ``surfels_auto``).
``--side-view DIR``: also writes PNGs of each lift 30 degrees to the left of the input camera
(orbiting the median-depth point). ``--ut``: also times ``--look lyra`` (3DGUT) against
``--look standard`` on a 512 x 512 orbit frame for the previous and the current lift, the
slowdown ratio of each (issue: 8x on the previous lift) and the mean alpha (see-through frames).

Usage: ``python bench/lift.py [--size half|full] [--side-view DIR] [--ut]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from lyra.pipeline.lift import DEFAULT_FOOTPRINT, THIN_RATIO, lift_image
from lyra.render import Camera, render
from lyra.render.projection import EPS_2D
from lyra.scene.gaussians import Gaussians, rotmats_to_quats

DISC_PX = math.sqrt(DEFAULT_FOOTPRINT**2 - EPS_2D)  # the current lift's disc at full resolution (px)
FOCAL, CX, CY, DOFFS, BASELINE = 994.978, 311.193, 254.877, 31.086, 0.193001  # skimage's docstring, Middlebury / 4


def stereo_pair(step: int):
    """(left, right) float RGB, left z-depth (NaN unknown), left and right intrinsics; ``step``-times down-sampled."""
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    depth = FOCAL * BASELINE / (disparity + DOFFS)
    depth[~np.isfinite(disparity)] = np.nan
    h, w = left.shape[0] // step, left.shape[1] // step

    def down(a):
        return a[: h * step, : w * step].reshape(h, step, w, step, *a.shape[2:]).mean(axis=(1, 3))

    k_left = [FOCAL / step, FOCAL / step, (CX + 0.5) / step, (CY + 0.5) / step]
    k_right = [k_left[0], k_left[1], (CX + DOFFS + 0.5) / step, k_left[3]]
    return down(left / 255.0), down(right / 255.0), down(depth).astype(np.float32), k_left, k_right


def ray_discs(image, depth, intrinsics, disc_px: float) -> Gaussians:
    """The previous lift: per pixel, a disc of ``disc_px`` facing its view ray (same centres, colours, opacities)."""
    g = lift_image(image, depth, intrinsics, pixels_per_splat=1)
    footprint = disc_px
    fx, fy = intrinsics[0], intrinsics[1]
    ray = g.means / g.means.norm(dim=-1, keepdim=True)
    tangential = torch.stack([-ray[:, 1], ray[:, 0], torch.zeros_like(ray[:, 0])], -1)
    length = tangential.norm(dim=-1, keepdim=True)
    tangential = torch.where(length > 1e-9, tangential / length.clamp_min(1e-12), torch.tensor([1.0, 0.0, 0.0]))
    radial = torch.linalg.cross(ray, tangential)
    across = footprint * g.means[:, 2] / math.sqrt(fx * fy)
    cos_theta = ray[:, 2]
    g.quats = rotmats_to_quats(torch.stack([tangential, radial, ray], dim=-1))
    g.scales = torch.stack([across, across * cos_theta, THIN_RATIO * across], dim=-1)
    return g


def covisible(depth, k_left, k_right) -> np.ndarray:
    """Right-view pixels that see a surface point with a left depth (see tests/pipeline/test_lift.py)."""
    h, w = depth.shape
    rows, cols = np.nonzero(np.isfinite(depth))
    z = depth[rows, cols]
    x = (cols + 0.5 - k_left[2]) * z / k_left[0]
    u = np.floor(k_right[0] * (x - BASELINE) / z + k_right[2]).astype(int)
    inside = (u >= 0) & (u < w)
    hit = np.zeros((h, w), bool)
    hit[rows[inside], u[inside]] = True
    hit[:, 1:-1] |= hit[:, :-2] & hit[:, 2:]
    core = hit.copy()
    for shift in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        core &= np.roll(hit, shift, axis=(0, 1))
    core[[0, -1], :] = False
    core[:, [0, -1]] = False
    return core


def render_np(g, c2w, intrinsics, width, height, **options):
    camera = Camera(torch.as_tensor(c2w, dtype=torch.float32), torch.tensor(intrinsics, dtype=torch.float32), width, height)
    out = render(g, camera, backend="torch", **options)
    return out.rgb.numpy(), out.alpha.numpy()


def psnr(a, b, mask) -> float:
    return float(-10 * np.log10(((np.asarray(a, np.float64) - b) ** 2)[mask].mean()))


def side_c2w(depth, degrees: float) -> np.ndarray:
    """The input camera orbited ``degrees`` about the vertical axis through the median-depth point."""
    pivot = np.array([0.0, 0.0, float(np.nanmedian(depth))])
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    c2w = np.eye(4)
    c2w[:3, :3] = rot
    c2w[:3, 3] = pivot - rot @ pivot
    return c2w


def ut_timing(gaussians, size: int = 512) -> dict:
    """CPU seconds (one thread) for one orbit frame with --look standard and --look lyra (3DGUT), their ratio, mean alphas."""
    from lyra.render.framing import trajectory_cameras
    from lyra.render.looks import look_options

    cameras, _ = trajectory_cameras(gaussians, "orbit", 8, size, size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result = {}
    for look in ("standard", "lyra"):
        seconds = []
        for _ in range(2):  # best of two: the first call in a process also pays for warm-up
            start = time.process_time()  # one thread, CPU time: steadier than wall time on a shared machine
            with torch.no_grad():
                out = render(gaussians, cameras[1], backend="torch", **look_options(look))
            seconds.append(time.process_time() - start)
        result[f"{look}_s"] = round(min(seconds), 2)
        result[f"{look}_mean_alpha"] = round(float(out.alpha.mean()), 3)
    torch.set_num_threads(threads)
    result["lyra_over_standard"] = round(result["lyra_s"] / result["standard_s"], 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["half", "full"], default="half")
    parser.add_argument("--side-view", type=Path, default=None, help="folder for the 30-degree PNGs")
    parser.add_argument("--ut", action="store_true", help="also time 3DGUT against EWA on an orbit frame")
    args = parser.parse_args()
    left, right, depth, k_left, k_right = stereo_pair(2 if args.size == "half" else 1)
    h, w = depth.shape
    lifts = {
        "ray_discs_0.25": lambda: ray_discs(left, depth, k_left, 0.25),
        f"ray_discs_{DISC_PX:.2f}": lambda: ray_discs(left, depth, k_left, DISC_PX),
        "surfels": lambda: lift_image(left, depth, k_left, pixels_per_splat=1),
    }
    if args.size == "full":
        lifts["surfels_auto"] = lambda: lift_image(left, depth, k_left)
    c2w_right = np.eye(4)
    c2w_right[0, 3] = BASELINE
    seen, valid = covisible(depth, k_left, k_right), np.isfinite(depth)
    built, renders = {}, {}
    for name, make in lifts.items():
        start = time.perf_counter()
        built[name] = make()
        lift_s = time.perf_counter() - start
        rgb, alpha = render_np(built[name], c2w_right, k_right, w, h)
        rgb_in, _ = render_np(built[name], np.eye(4), k_left, w, h)
        renders[name] = (rgb, alpha, rgb_in, lift_s)
    opaque = seen.copy()
    for _, alpha, _, _ in renders.values():
        opaque &= alpha > 0.95
    figures = {}
    for name, (rgb, alpha, rgb_in, lift_s) in renders.items():
        figures[name] = {
            "splats": len(built[name]),
            "psnr_right_covisible": round(psnr(rgb, right, seen), 2),
            "psnr_right_alpha_masked": round(psnr(rgb, right, opaque), 2),
            "covered_right": round(float((alpha[seen] > 0.95).mean()), 4),
            "psnr_input": round(psnr(rgb_in, left, valid), 2),
            "lift_s": round(lift_s, 3),
        }
    result = {
        "pair": f"Middlebury Motorcycle (skimage), {w}x{h}",
        "covisible_share": round(float(seen.mean()), 3),
        "alpha_masked_share": round(float(opaque.mean()), 3),
        "lifts": figures,
        "gain_covisible_db": round(figures["surfels"]["psnr_right_covisible"] - figures["ray_discs_0.25"]["psnr_right_covisible"], 2),
        "load_average": os.getloadavg(),
    }
    if args.side_view is not None:
        import imageio.v3 as iio

        args.side_view.mkdir(parents=True, exist_ok=True)
        c2w = side_c2w(depth, -30.0)
        for name, g in built.items():
            rgb, _ = render_np(g, c2w, k_left, w, h)
            iio.imwrite(args.side_view / f"side30_{args.size}_{name}.png", (np.clip(rgb, 0, 1) * 255).astype(np.uint8))
        result["side_view_pngs"] = str(args.side_view)
    if args.ut:
        result["ut_orbit_512"] = {name: ut_timing(built[name]) for name in ("ray_discs_0.25", "surfels" if args.size == "half" else "surfels_auto")}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""``lyra render SCENE --trajectory NAME|path.json --out OUT``: an MP4 along a path, or a still."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from lyra.errors import InputDataError
from lyra.fileio import ensure_writable_folder
from lyra.render.framing import TRAJECTORY_HELP
from lyra.render.looks import LOOK_NAMES, default_look, look_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scene", help="scene file or sequence folder (anything lyra.scene.load reads)")
    parser.add_argument("--out", required=True, help="output .mp4 video, or .png/.jpg for a still of the first camera")
    parser.add_argument("--trajectory", default="orbit", help=TRAJECTORY_HELP)
    parser.add_argument("--size", default="512x512", help="WxH in pixels (even numbers for MP4); default 512x512")
    parser.add_argument("--fps", type=float, default=24.0, help="video frame rate (default 24)")
    parser.add_argument("--frames", type=int, default=None, help="number of frames (default 121, Lyra's trajectory length)")
    parser.add_argument("--time", type=float, default=None, help="freeze a 4D scene at this time (seconds)")
    parser.add_argument("--background", default=None,
                        help="white, black or R,G,B in 0..1 (default: the look's, white for both looks)")
    parser.add_argument("--look", default="auto", choices=["auto", *LOOK_NAMES],
                        help="lyra: Lyra's own renders (3DGUT, white, near 0.1, far 500); standard: EWA splatting "
                             "as common 3DGS viewers; auto (default): lyra for scenes that came from Lyra, else standard")
    parser.add_argument("--fov", type=float, default=60.0, help="vertical field of view in degrees (default 60)")
    parser.add_argument("--distance-factor", type=float, default=1.0, help="Lyra preset movement factor (2 = more motion)")
    parser.add_argument("--rotation", default="center_facing", choices=["center_facing", "none", "trajectory_aligned"])
    parser.add_argument("--backend", default="auto", choices=["auto", "gsplat", "torch"])
    parser.add_argument("--sh-degree", type=int, default=None, help="use at most this SH degree")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputDataError(f"--size: expected WxH such as 1280x704, found {text!r}") from None
    if width < 1 or height < 1:
        raise InputDataError(f"--size: expected positive sizes, found {text!r}")
    return width, height


def parse_background(text: str) -> tuple[float, float, float]:
    named = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0)}
    if text.lower() in named:
        return named[text.lower()]
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise InputDataError(f"--background: expected white, black or R,G,B in 0..1, found {text!r}")
    return values


def run(args: argparse.Namespace) -> int:
    from lyra.cli.progress_bar import progress_bar
    from lyra.render.framing import trajectory_cameras
    from lyra.render.video import IMAGE_SUFFIXES, render_frames, render_video, write_image
    from lyra.scene import GaussianSequence, load

    width, height = parse_size(args.size)
    background = None if args.background is None else parse_background(args.background)
    out = Path(args.out)
    still = out.suffix.lower() in IMAGE_SUFFIXES
    if not still and out.suffix.lower() != ".mp4":
        raise InputDataError(f"--out: expected a .mp4 video or a {'/'.join(IMAGE_SUFFIXES)} image, found {out.name!r}")
    if not still and (width % 2 or height % 2):
        raise InputDataError(f"--size: MP4 needs an even width and height, found {width}x{height}")
    num_frames = 121 if args.frames is None else args.frames
    if num_frames < 1:
        raise InputDataError(f"--frames: expected at least 1, found {num_frames}")
    if not (math.isfinite(args.fov) and 0.0 < args.fov < 180.0):
        raise InputDataError(f"--fov: expected a vertical field of view between 0 and 180 degrees, found {args.fov:g}")
    if not (math.isfinite(args.fps) and args.fps > 0.0):
        raise InputDataError(f"--fps: expected a positive frame rate, found {args.fps:g}")
    ensure_writable_folder(out)  # fail now, not after rendering every frame
    scene = load(args.scene)
    cameras, times = trajectory_cameras(
        scene, args.trajectory, 1 if still else num_frames, width, height,
        fov_y=math.radians(args.fov), rotation=args.rotation, distance_factor=args.distance_factor,
    )
    if isinstance(scene, GaussianSequence):
        if args.time is not None:
            times = [args.time] * cameras.batch_shape[0]
        elif times is not None:
            times = times.tolist()
    else:
        times = None
    look = default_look(scene) if args.look == "auto" else args.look
    options = dict(look_options(look, background=background), backend=args.backend, sh_degree=args.sh_degree)
    if still:
        rgb = next(iter(render_frames(scene, cameras[:1], times=times[:1] if times else None, **options)))
        write_image(out, rgb)
        print(f"wrote {out} ({width}x{height})")
        return 0
    with torch.no_grad(), progress_bar("lyra render", enabled=not args.no_progress) as progress:
        count = render_video(scene, cameras, out, fps=args.fps, times=times, progress=progress, **options)
    print(f"wrote {out} ({count} frames, {width}x{height}, {args.fps:g} fps)")
    return 0

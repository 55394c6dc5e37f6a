"""``lyra generate``: an image (or a video) -> a 3D scene (or a 4D sequence).

Examples::

    lyra generate photo.jpg --depth photo_depth.npy --out scene.ply                 # the fast lift, any machine
    lyra generate photo.jpg --depth-model apple/DepthPro-hf --out scene.ply         # depth from Depth Pro
    lyra generate photo.jpg --backend lyra --trajectories left,right --out scene.ply  # GEN3C + the Lyra decoder
    lyra generate clip.mp4 --dynamic --depth-model DEPTH --times 0:49:4 --out clip_4d  # a 4D preview, per frame

Backends: ``lift`` (image + depth -> pixel-aligned Gaussians, seconds on a CPU)
and ``lyra`` (GEN3C along camera trajectories, then the latent 3DGS decoder;
needs the models of ``lyra models check`` and a large GPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lyra.errors import InputDataError

BACKENDS = ("lift", "lyra")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lyra.render.trajectories import LYRA_TRAJECTORY_INDEX

    parser.add_argument("input", type=Path, help="an image, a video, or a ViPE-style folder (rgb/ depth/ pose/ intrinsics/)")
    parser.add_argument("--backend", choices=BACKENDS, default="lift", help="lift: fast preview; lyra: the full pipeline")
    parser.add_argument("--out", type=Path, required=True, help="output scene file (.ply, .splat, ...) or sequence folder")
    depth = parser.add_argument_group("depth and camera")
    depth.add_argument("--depth", type=Path, default=None, help="depth of the image: .exr, 16-bit .png or .npy (metres)")
    depth.add_argument(
        "--depth-model", default=None,
        help="folder or hub id of Depth Pro (apple/DepthPro-hf) or Depth Anything V2 metric, when no --depth is given",
    )
    depth.add_argument("--png-depth-scale", type=float, default=1000.0, help="16-bit PNG units per metre (1000: mm)")
    depth.add_argument("--intrinsics", default=None, help="fx,fy,cx,cy in pixels of the input image")
    depth.add_argument("--fov", type=float, default=None, help="horizontal field of view in degrees (default 60)")
    lyra = parser.add_argument_group("lyra backend")
    lyra.add_argument(
        "--trajectories", default=",".join(LYRA_TRAJECTORY_INDEX),
        help="comma-separated Lyra trajectories (left,right,up,down,zoom_in,zoom_out,clockwise,counterclockwise)",
    )
    lyra.add_argument("--trajectory-path", type=Path, default=None,
                      help="a camera-path JSON (as the Render panel / lyra render use) as an extra 'custom' trajectory")
    lyra.add_argument("--movement", type=float, default=1.0, help="movement factor of the trajectories (2: more)")
    lyra.add_argument("--steps", type=int, default=35, help="diffusion steps per trajectory")
    lyra.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance")
    lyra.add_argument("--seed", type=int, default=0)
    lyra.add_argument("--offload", default="none", help="the teacher's memory mode: none, model or group (CPU offload), optionally +fp8 (fp8 weight storage)")
    lyra.add_argument("--size", default="1280x704", help="generation size WxH, multiples of 16 (Lyra: 1280x704)")
    lyra.add_argument("--work-dir", type=Path, default=None, help="where stages are kept to resume (default: OUT.work)")
    parser.add_argument("--dynamic", action="store_true", help="a video in, a 4D sequence out (implied by a video)")
    parser.add_argument(
        "--times", default=None,
        help="4D: frame indices start:stop:step or a,b,c (lyra default 0:121:4; lift default every 4th frame)",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_intrinsics(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[0] <= 0 or values[1] <= 0:
        raise InputDataError(f"--intrinsics: expected fx,fy,cx,cy in pixels with positive focal lengths, found {text!r}")
    return values


def parse_trajectories(text: str) -> list[str]:
    from lyra.render.trajectories import LYRA_PRESETS

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in LYRA_PRESETS or n == "none"]
    if not names or unknown:
        choices = ", ".join(n for n in LYRA_PRESETS if n != "none")
        raise InputDataError(f"--trajectories: expected names among {choices}, found {text!r}")
    return names


def _notify(message: str) -> None:
    print(f"lyra generate: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from lyra.cli.decode import parse_times, resolve_device
    from lyra.cli.progress_bar import progress_bar
    from lyra.cli.render import parse_size
    from lyra.pipeline.depth import DEFAULT_FOV_X_DEGREES, default_intrinsics
    from lyra.pipeline.inputs import read_input
    from lyra.scene import GaussianSequence, save

    if args.png_depth_scale <= 0:
        raise InputDataError(f"--png-depth-scale: expected units per metre > 0, found {args.png_depth_scale}")
    if args.backend == "lyra" and (args.steps < 1 or args.movement <= 0):
        raise InputDataError("--steps must be >= 1 and --movement > 0")
    trajectories = parse_trajectories(args.trajectories)
    width, height = parse_size(args.size)
    intrinsics = parse_intrinsics(args.intrinsics)
    device = resolve_device(args.device)
    frames = read_input(args.input)
    for notice in frames.notices:
        _notify(notice)
    if frames.is_video and not args.dynamic:
        _notify("the input is a video: making a 4D sequence (--dynamic)")
    if args.dynamic and not frames.is_video:
        raise InputDataError(f"{args.input}: --dynamic needs a video or a ViPE-style folder, found one image")
    if intrinsics is None and args.fov is not None:
        height, width = frames.size
        intrinsics = default_intrinsics(width, height, args.fov).tolist()
    elif args.fov is not None:
        raise InputDataError("give either --intrinsics or --fov, not both")
    times = parse_times(args.times) if args.times is not None else None
    if args.backend == "lyra":
        from lyra.pipeline.generate_models import require_models

        require_models(teacher=True, decoder=True, dynamic=frames.is_video)  # before any slow work

    if args.trajectory_path is not None:
        trajectories.append("custom")
    estimator = None
    if args.depth is None and frames.depth is None:
        if args.depth_model is not None:
            from lyra.pipeline.depth import DepthEstimator

            estimator = DepthEstimator.from_pretrained(args.depth_model, device=device)
        else:
            from lyra.pipeline.preview import default_depth_estimator

            estimator = default_depth_estimator(device)  # the registry's; a clear error when missing
    if intrinsics is None and frames.intrinsics is None and estimator is None:
        _notify(f"no --intrinsics: assuming a {DEFAULT_FOV_X_DEGREES:g} degree horizontal field of view")

    with progress_bar(f"lyra generate ({args.backend})", enabled=not args.quiet) as progress:
        if args.backend == "lift":
            from lyra.pipeline.preview import lift_frames

            if frames.is_video and times is None:
                times = list(range(0, frames.frames.shape[0], 4))
            if frames.is_video:
                times = [t for t in times if t < frames.frames.shape[0]]
            result = lift_frames(
                frames, frame_indices=times, depth_file=args.depth, estimator=estimator, intrinsics=intrinsics,
                png_units_per_metre=args.png_depth_scale, progress=progress,
            )
        else:
            from lyra.pipeline.generate import GenerateSettings, generate_scene

            if frames.is_video and times is None:
                times = list(range(0, 121, 4))  # the official demo's target times
            settings = GenerateSettings(
                trajectories=trajectories, movement=args.movement, steps=args.steps, guidance=args.guidance,
                seed=args.seed, target_times=times, offload=args.offload, device=str(device),
                custom_path=str(args.trajectory_path) if args.trajectory_path else None,
                width=width, height=height,
            )
            work_dir = args.work_dir or args.out.with_name(args.out.name + ".work")
            result = generate_scene(
                frames, settings, work_dir=work_dir, depth_file=args.depth, estimator=estimator,
                intrinsics=intrinsics, png_units_per_metre=args.png_depth_scale, progress=progress,
            )
    path = save(result, args.out)
    if isinstance(result, GaussianSequence):
        print(f"wrote {path} ({len(result)} frames, {sum(len(f) for f in result.frames)} splats in all)")
    else:
        print(f"wrote {path} ({len(result)} splats)")
    return 0

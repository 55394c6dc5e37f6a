"""``lyra generate``: an image (or a video) -> a 3D scene (or a 4D sequence), through one request.

Examples::

    lyra generate photo.jpg --depth photo_depth.npy --out scene.ply                 # the fast lift, any machine
    lyra generate photo.jpg --depth-model apple/DepthPro-hf --out scene.ply         # depth from Depth Pro
    lyra generate photo.jpg --backend lyra --trajectories left,right --out scene.ply  # GEN3C + the Lyra decoder
    lyra generate clip.mp4 --dynamic --depth-model DEPTH --times 0:49:4 --out clip_4d  # a 4D preview, per frame
    lyra generate photo.jpg --depth d.npy --out scene.ply --save-request photo.yaml    # keep the request ...
    lyra generate --request photo.yaml                                                 # ... and run it again
    torchrun --nproc_per_node 4 -m lyra generate photo.jpg --backend lyra --out scene.ply  # trajectories over 4 GPUs

The flags fill a :class:`lyra.pipeline.request.GenerateRequest` (``--request FILE.yaml`` starts from a
saved one; flags given as well override its fields) and :func:`lyra.pipeline.request.run` runs it.
Errors name the request's fields (``trajectories: ...``); each flag's help says which field it sets.
Backends: ``lift`` (image + depth -> pixel-aligned Gaussians, seconds on a CPU) and ``lyra`` (a teacher
along camera trajectories, then the latent 3DGS decoder; the GEN3C teacher needs the models of
``lyra models check`` and a large CUDA GPU).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lyra.errors import InputDataError

# flag destination -> request field, for the flags whose names differ from their field
FIELD_OF_FLAG = {"out": "output", "png_depth_scale": "depth_units", "trajectory_path": "custom_path",
                 "offload": "memory", "frames": "num_frames"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lyra.device import DEVICE_CHOICES
    from lyra.pipeline.request import BACKENDS, MEMORY_MODES, TEACHERS

    parser.add_argument("input", nargs="?", default=None,
                        help="an image, a video, or a ViPE-style folder (rgb/ depth/ pose/ intrinsics/) [input]")
    parser.add_argument("--request", type=Path, default=None,
                        help="a request YAML (from --save-request or the Generate panel); flags override its fields")
    parser.add_argument("--save-request", type=Path, default=None, help="write the request as YAML before running it")
    parser.add_argument("--backend", choices=BACKENDS, default=None, help="lift: fast preview; lyra: the full pipeline [backend]")
    parser.add_argument("--out", default=None, help="output scene file (.ply, .splat, ...) or sequence folder [output]")
    depth = parser.add_argument_group("depth and camera")
    depth.add_argument("--depth", default=None, help="depth of the image: .exr, 16-bit .png or .npy (metres) [depth]")
    depth.add_argument(
        "--depth-model", default=None,
        help="folder or hub id of Depth Pro (apple/DepthPro-hf) or Depth Anything V2 metric, when no depth file "
             "is given [depth_model]",
    )
    depth.add_argument("--png-depth-scale", type=float, default=None, help="16-bit PNG units per metre (1000: mm) [depth_units]")
    depth.add_argument("--intrinsics", default=None, help="fx,fy,cx,cy in pixels of the input image [intrinsics]")
    depth.add_argument("--fov", type=float, default=None, help="horizontal field of view in degrees (default 60) [fov]")
    depth.add_argument("--pixels-per-splat", type=int, default=None,
                       help="lift: 1 = one splat per pixel (full resolution, for server renders), N = per NxN block; "
                            "default: the coarsest block that keeps a photo drawable live [pixels_per_splat]")
    lyra = parser.add_argument_group("lyra backend")
    lyra.add_argument("--teacher", choices=TEACHERS, default=None,
                      help="gen3c: the video model (large CUDA GPU); lift: a CPU preview of the trajectories [teacher]")
    lyra.add_argument("--trajectories", default=None,
                      help="comma-separated Lyra trajectories (left,right,up,down,zoom_in,zoom_out,clockwise,"
                           "counterclockwise; default the official six) [trajectories]")
    lyra.add_argument("--trajectory-path", default=None,
                      help="a camera-path JSON (as the Render panel / lyra render use) as an extra 'custom' "
                           "trajectory [custom_path]")
    lyra.add_argument("--movement", type=float, default=None, help="movement factor of the trajectories (2: more) [movement]")
    lyra.add_argument("--steps", type=int, default=None, help="diffusion steps per trajectory (35) [steps]")
    lyra.add_argument("--guidance", type=float, default=None, help="classifier-free guidance (1.0) [guidance]")
    lyra.add_argument("--seed", type=int, default=None, help="[seed]")
    lyra.add_argument("--offload", "--memory", dest="offload", choices=MEMORY_MODES, default=None,
                      help="the GEN3C teacher's memory mode: none, model or group (CPU offload), optionally +fp8 [memory]")
    lyra.add_argument("--size", default=None, help="generation size WxH, multiples of 16 (Lyra: 1280x704) [size]")
    lyra.add_argument("--frames", type=int, default=None, help="frames per trajectory, 8k+1 (Lyra: 121) [num_frames]")
    lyra.add_argument("--work-dir", default=None, help="where stages are kept to resume (default: OUT.work) [work_dir]")
    parser.add_argument("--dynamic", action="store_true", default=None,
                        help="a video in, a 4D sequence out (implied by a video) [dynamic]")
    parser.add_argument(
        "--times", default=None,
        help="4D: frame indices start:stop:step or a,b,c (lyra default 0:121:4; lift default every 4th frame) [times]",
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="auto: CUDA when present [device]")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def request_from_args(args: argparse.Namespace):
    """The :class:`GenerateRequest` the flags (and ``--request``) describe."""
    from lyra.pipeline.request import GenerateRequest

    values = GenerateRequest.from_yaml(args.request).to_dict() if args.request is not None else {}
    fields = {f for f in GenerateRequest.__dataclass_fields__}
    for name, value in vars(args).items():
        field = FIELD_OF_FLAG.get(name, name)
        if value is not None and field in fields:
            values[field] = value
    if values.get("input") is None:
        raise InputDataError("input: give an image, a video or a ViPE-style folder (or --request FILE.yaml)")
    if values.get("output") is None:
        raise InputDataError("output: give --out (a scene file or sequence folder)")
    return GenerateRequest.from_dict(values)


def _notify(message: str) -> None:
    print(f"lyra generate: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from lyra.cli.progress_bar import progress_bar
    from lyra.pipeline import request as front_door
    from lyra.pipeline.teach import end_ranks, rank_and_world
    from lyra.scene import GaussianSequence

    request = request_from_args(args)
    rank, world = rank_and_world()
    if args.save_request is not None and rank == 0:
        request.to_yaml(args.save_request)
        _notify(f"request saved to {args.save_request}")
    try:
        label = f"lyra generate ({request.backend})" + (f" rank {rank}/{world}" if world > 1 else "")
        with progress_bar(label, enabled=not args.quiet) as progress:
            result = front_door.run(request, progress, notify=_notify)
    finally:
        end_ranks()
    if result is None:
        shared = f"trajectories written to {request.resolved_work_dir() / 'sdg'}; " if request.backend == "lyra" else ""
        print(f"rank {rank}: {shared}rank 0 writes {request.output}")
    elif isinstance(result, GaussianSequence):
        print(f"wrote {request.output} ({len(result)} frames at {result.fps:g} fps, "
              f"{sum(len(f) for f in result.frames)} splats in all)")
    else:
        print(f"wrote {request.output} ({len(result)} splats)")
    return 0

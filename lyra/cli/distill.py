"""``lyra distill make-data --teacher synthetic|gen3c --out ROOT``: teacher data as SDG folders.

Shards over ranks when started by torchrun / accelerate (RANK, WORLD_SIZE) and skips finished
trajectory folders, so it can be restarted.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = sub.add_parser("make-data", help="make teacher data (SDG folders) for training")
    make.add_argument("--teacher", choices=("synthetic", "gen3c"), default="synthetic")
    make.add_argument("--out", required=True, help="data root (ROOT/train, ROOT/eval, ROOT/tokenizer)")
    make.add_argument("--images", default=None, help="gen3c: folder of input images, one scene each")
    make.add_argument("--scenes", type=int, default=16, help="synthetic: training scenes")
    make.add_argument("--eval-scenes", type=int, default=2, help="synthetic: held-out scenes")
    make.add_argument("--size", default=None, help="video size HxW, multiples of 16 (synthetic 64x96, gen3c 704x1280)")
    make.add_argument("--depth-dir", default=None, help="gen3c: depth files <image stem>.npy|.exr|.png (else the depth model)")
    make.add_argument("--trajectories", default="left,right,up,zoom_out,zoom_in,clockwise", help="gen3c: Lyra trajectories")
    make.add_argument("--steps", type=int, default=35, help="gen3c: sampling steps")
    make.add_argument("--latent-frames", type=int, default=2, help="synthetic: latent frames (8(T-1)+1 video frames)")
    make.add_argument("--seed", type=int, default=None, help="synthetic: first scene seed (1000); gen3c: the trajectories' seed (0)")
    make.add_argument("--depth-model", default=None, help="gen3c: depth network folder or hub id (default: the registry's)")
    make.add_argument("--png-depth-scale", type=float, default=1000.0, help="gen3c: 16-bit PNG depth units per metre")
    make.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="gen3c: auto = CUDA when present")
    make.add_argument("--offload", default="none", help="gen3c: the teacher's memory mode (none, model, group, +fp8)")
    make.add_argument("--tokenizer", default=None, help="Cosmos tokenizer folder (default: a tiny random one)")


def run(args: argparse.Namespace) -> int:
    from lyra.distill.make_data import make_synthetic_data, rank_and_world
    from lyra.errors import InputDataError
    from lyra.model.tokenizer import load_cosmos_tokenizer

    size = args.size or ("704x1280" if args.teacher == "gen3c" else "64x96")
    try:
        height, width = (int(v) for v in size.lower().split("x"))
    except ValueError as exc:
        raise InputDataError(f"--size must be HxW, found {size!r}") from exc

    def progress(fraction: float, text: str) -> None:
        print(f"\r[{100 * fraction:5.1f}%] {text}    ", end="", file=sys.stderr, flush=True)

    rank, world = rank_and_world()
    if args.teacher == "gen3c":
        from lyra.distill.gen3c_data import make_gen3c_data
        from lyra.pipeline.generate_models import require_models
        from lyra.pipeline.request import GenerateRequest

        if args.images is None:
            raise InputDataError("images: --teacher gen3c needs --images DIR (one scene per image)")
        # The request every image's run starts from; each image replaces its input (lyra.distill.gen3c_data).
        request = GenerateRequest(
            input=args.images, backend="lyra", teacher="gen3c", trajectories=args.trajectories, steps=args.steps,
            seed=0 if args.seed is None else args.seed, size=(width, height), device=args.device, depth_model=args.depth_model,
            depth_units=args.png_depth_scale, memory=args.offload,
        )
        require_models(teacher=True, decoder=False, dynamic=False)  # names what to get before any work
        made = make_gen3c_data(args.images, args.out, request=request, depth_dir=args.depth_dir, progress=progress)
        print(file=sys.stderr)
        print(json.dumps({"out": args.out, "rank": rank, "world_size": world, "made": len(made)}))
        return 0
    vae = load_cosmos_tokenizer(args.tokenizer) if args.tokenizer else None
    root = make_synthetic_data(
        args.out, train_scenes=args.scenes, eval_scenes=args.eval_scenes, width=width, height=height,
        latent_frames=args.latent_frames, seed=1000 if args.seed is None else args.seed, vae=vae, progress=progress,
    )
    print(file=sys.stderr)
    print(json.dumps({"out": str(root), "rank": rank, "world_size": world}))
    return 0

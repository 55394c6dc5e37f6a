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
    make.add_argument("--size", default="64x96", help="synthetic: video size HxW (multiples of 16)")
    make.add_argument("--latent-frames", type=int, default=2, help="synthetic: latent frames (8(T-1)+1 video frames)")
    make.add_argument("--seed", type=int, default=1000, help="synthetic: first scene seed")
    make.add_argument("--tokenizer", default=None, help="Cosmos tokenizer folder (default: a tiny random one)")


def run(args: argparse.Namespace) -> int:
    from lyra.errors import InputDataError

    if args.teacher == "gen3c":
        raise InputDataError(
            "the GEN3C teacher is not part of this build yet (lyra/teacher/gen3c); "
            "use --teacher synthetic, or write SDG folders with your own GEN3C runs"
        )
    from lyra.distill.make_data import make_synthetic_data, rank_and_world
    from lyra.model.tokenizer import load_cosmos_tokenizer

    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError as exc:
        raise InputDataError(f"--size must be HxW, found {args.size!r}") from exc
    vae = load_cosmos_tokenizer(args.tokenizer) if args.tokenizer else None

    def progress(fraction: float, text: str) -> None:
        print(f"\r[{100 * fraction:5.1f}%] {text}    ", end="", file=sys.stderr, flush=True)

    rank, world = rank_and_world()
    root = make_synthetic_data(
        args.out, train_scenes=args.scenes, eval_scenes=args.eval_scenes, width=width, height=height,
        latent_frames=args.latent_frames, seed=args.seed, vae=vae, progress=progress,
    )
    print(file=sys.stderr)
    print(json.dumps({"out": str(root), "rank": rank, "world_size": world}))
    return 0

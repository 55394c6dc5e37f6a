"""``lyra decode``: official SDG latents -> Gaussians (PLY) or a Gaussian sequence folder.

Example::

    lyra decode assets/demo/static/diffusion_output --checkpoint lyra_static.pt \\
        --vae checkpoints/Cosmos-Tokenize1-CV8x8x8-720p-diffusers --out scene.ply
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lyra.errors import InputDataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scene_dir", type=Path, help="SDG output folder with one sub-folder per trajectory (0..5)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="lyra_static.pt / lyra_dynamic.pt (hub repo nvidia/Lyra) or a folder saved by lyra.model.save_decoder",
    )
    parser.add_argument("--vae", type=Path, required=True, help="Cosmos-Tokenize1-CV8x8x8-720p in diffusers format")
    parser.add_argument(
        "--kind",
        choices=["auto", "static", "dynamic"],
        default="auto",
        help="model kind of an official .pt file (auto: 'dynamic' if the file name says so)",
    )
    parser.add_argument(
        "--views", default=None, help="trajectory folders in input order (default: the official 5,0,1,2,3,4)"
    )
    parser.add_argument("--name", default=None, help="NAME of latent/NAME.pkl when a folder holds several")
    parser.add_argument(
        "--prune", type=float, default=None, help="opacity prune ratio (default: the checkpoint's, 0.8)"
    )
    parser.add_argument(
        "--times",
        default="all",
        help="dynamic model: target frame indices: all, a list 0,60,120, or start:stop:step (official demo: 0:121:4)",
    )
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA when present")
    parser.add_argument(
        "--dtype", choices=["float32", "bfloat16"], default=None, help="default: bfloat16 on CUDA, else float32"
    )
    parser.add_argument("--out", type=Path, required=True, help="output .ply (static) or sequence folder (dynamic)")


def run(args: argparse.Namespace) -> int:
    from lyra.cli.progress_bar import progress_bar
    from lyra.device import resolve_device
    from lyra.model.checkpoint import load_decoder
    from lyra.model.tokenizer import load_cosmos_tokenizer
    from lyra.pipeline.decode import decode_scene
    from lyra.pipeline.request import parse_times
    from lyra.scene import save

    device = resolve_device(args.device)
    dtype_name = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    dtype = getattr(torch, dtype_name)
    from lyra.render.trajectories import LYRA_DEMO_ORDER

    views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views is not None else list(LYRA_DEMO_ORDER)
    if not views:
        raise InputDataError("--views: expected a comma-separated list of trajectory folders")
    if not args.scene_dir.is_dir():
        raise InputDataError(f"{args.scene_dir}: scene folder not found")
    times = parse_times(args.times)
    if args.prune is not None and not 0.0 <= args.prune < 1.0:
        raise InputDataError(f"--prune: expected a ratio in [0, 1), found {args.prune}")

    kind = None if args.kind == "auto" else args.kind
    model = load_decoder(args.checkpoint, kind=kind, device=device, dtype=dtype)
    vae = load_cosmos_tokenizer(args.vae, device=device, dtype=torch.float32 if device.type == "cpu" else dtype)
    with progress_bar("lyra decode") as progress:
        result = decode_scene(
            model,
            vae,
            args.scene_dir,
            views=views,
            target_frames=times,
            name=args.name,
            vae_folder=args.vae,
            prune_ratio=args.prune,
            progress=progress,
        )
    path = save(result, args.out)
    count = len(result) if hasattr(result, "frames") else 1
    print(f"wrote {path} ({model.config.kind} model, {count} Gaussian set{'s' * (count != 1)})")
    return 0

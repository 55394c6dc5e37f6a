"""``lyra eval CHECKPOINT DATA``: held-out metrics of a decoder on SDG scenes."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="decoder folder (model.safetensors + config.yaml) or official .pt")
    parser.add_argument("data", help="SDG scenes (a scene folder, a folder of scenes, or ROOT with eval/)")
    parser.add_argument("--tokenizer", default=None, help="Cosmos tokenizer folder (default: DATA/../tokenizer)")
    parser.add_argument("--views", type=int, default=1, help="input trajectories per scene")
    parser.add_argument("--targets", type=int, default=4, help="target frames per scene (from other trajectories)")
    parser.add_argument("--frames", type=int, default=None, help="video frames per view (default: all stored)")
    parser.add_argument("--size", default=None, help="render size HxW (default: the stored video size)")
    parser.add_argument("--scenes", type=int, default=None, help="evaluate only the first N scenes")


def _tokenizer_folder(data, given):
    from pathlib import Path

    from lyra.errors import InputDataError

    if given:
        return Path(given)
    for folder in (Path(data), *Path(data).resolve().parents[:2]):
        if (folder / "tokenizer" / "config.json").is_file():
            return folder / "tokenizer"
    raise InputDataError(f"no tokenizer/ found beside {data}; pass --tokenizer COSMOS_TOKENIZER_DIR")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lyra.distill.data import SDGDataset, eval_specs
    from lyra.distill.evaluate import evaluate
    from lyra.distill.student import Conditioner
    from lyra.errors import InputDataError
    from lyra.model import load_decoder
    from lyra.model.tokenizer import latent_frames as latent_frames_of
    from lyra.model.tokenizer import load_cosmos_tokenizer, video_frames

    data = Path(args.data)
    scenes_root = data / "eval" if (data / "eval").is_dir() else data
    dataset = SDGDataset(scenes_root)
    model = load_decoder(args.checkpoint)
    conditioner = Conditioner(load_cosmos_tokenizer(_tokenizer_folder(scenes_root, args.tokenizer)))
    stored_frames, stored_size = dataset.stored_shape()
    latent_frames = stored_frames if args.frames is None else latent_frames_of(args.frames)
    if args.size:
        try:
            height, width = (int(v) for v in args.size.lower().split("x"))
        except ValueError as exc:
            raise InputDataError(f"--size must be HxW, found {args.size!r}") from exc
    else:
        height, width = stored_size
    specs = eval_specs(dataset, args.views, args.targets, video_frames(latent_frames))
    metrics = evaluate(model, conditioner, dataset, specs[: args.scenes], (height, width), latent_frames)
    print(json.dumps({"checkpoint": args.checkpoint, "scenes": len(specs[: args.scenes]), **metrics}))
    return 0

"""``lyra train PRESET|CONFIG.yaml --out DIR [--seed N] [--resume] [--view]``: self-distillation."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from lyra.distill.config import preset_names

    parser.add_argument("config", help=f"a preset ({', '.join(preset_names())}) or a training YAML file")
    parser.add_argument("--out", required=True, help="run folder: metrics.jsonl, loss.png, checkpoint/")
    parser.add_argument("--seed", type=int, default=None, help="model init and batch sampling seed")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint exactly")
    parser.add_argument("--max-steps", type=int, default=None, help="stop at this cumulative step")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this wall time")
    parser.add_argument("--data", default=None, help="SDG data root (overrides the config's data.root)")
    parser.add_argument("--view", action="store_true", help="serve the student's eval scene and its renders beside the "
                        "teacher's frames, refreshed at each eval; the page stays up after the run until Ctrl-C")
    parser.add_argument("--port", type=int, default=8080, help="viewer port with --view")


def run(args: argparse.Namespace) -> int:
    from lyra.distill.config import load_config
    from lyra.distill.train import CHECKPOINT_DIR, psnr_gain, train

    config = load_config(args.config)
    changes = {}
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.max_minutes is not None:
        changes["max_minutes"] = args.max_minutes
    if args.data is not None:
        changes["data"] = dataclasses.replace(config.data, root=args.data)
    config = dataclasses.replace(config, **changes)
    on_eval = None
    if args.view:
        from lyra.distill.live_view import LiveView

        on_eval = LiveView(port=args.port)

    def progress(fraction: float, text: str) -> None:
        print(f"\r[{100 * fraction:5.1f}%] {text}    ", end="", file=sys.stderr, flush=True)

    metrics = train(config, args.out, resume=args.resume, max_steps=args.max_steps, on_eval=on_eval, progress=progress)
    print(file=sys.stderr)
    gain = psnr_gain(f"{args.out}/metrics.jsonl")
    print(json.dumps({"out": args.out, "eval": metrics, "psnr_gain_db": gain}), flush=True)
    if on_eval is not None:
        checkpoint = Path(args.out) / CHECKPOINT_DIR
        on_eval.finish(checkpoint)
        print(f"training finished; the page shows the final checkpoint {checkpoint}. Ctrl-C to close it.",
              file=sys.stderr, flush=True)
        on_eval.serve_until_interrupted()
    return 0

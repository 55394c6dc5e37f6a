"""The ``lyra`` command line: ``lyra COMMAND ...``.

Each command lives in its own module ``lyra.cli.<name>`` exposing
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their command runs, so ``lyra info`` does not pay for model imports.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lyra.errors import LyraError

COMMANDS: dict[str, str] = {
    "info": "Describe a scene file or sequence folder",
    "convert": "Convert between splat formats",
    "render": "Render a scene to an image or an MP4 along a camera trajectory",
    "decode": "Decode official Lyra SDG latents into Gaussians with the latent 3DGS decoder",
    "models": "Check which models of the registry (GEN3C, tokenizer, T5, depth, decoders) are on this machine",
    "generate": "Generate a 3D scene from an image (or a 4D one from a video): fast lift or the Lyra pipeline",
    "train": "Train the latent 3DGS decoder by self-distillation (a preset name or a YAML config)",
    "eval": "Evaluate a decoder checkpoint on held-out SDG scenes (PSNR, SSIM, depth, Chamfer)",
    "distill": "Self-distillation data: `lyra distill make-data --teacher synthetic|gen3c ...`",
    "mesh": "A triangle mesh or collider of a scene (.ply, .obj, .glb): opacity field or fused depth",
    "share": "One self-contained HTML page that shows the scene offline (viser's embedded client)",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lyra", description="Lyra Studio command line tools.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(f"lyra.cli.{name}").add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _parse_and_run(argv)
        finally:
            # Flush here, inside the try: output to a pipe is block-buffered, so a reader that went away
            # (`lyra info --json | head`) often shows only at this flush (or at the interpreter's last one).
            sys.stdout.flush()
    except BrokenPipeError:
        # Stop quietly, as Unix tools do: Python's documented recipe (`signal` module docs, "Note on
        # SIGPIPE"). Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parse_and_run(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(command).parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    try:
        return int(importlib.import_module(f"lyra.cli.{args.command}").run(args) or 0)
    except LyraError as exc:
        print(f"lyra {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lyra {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``lyra models check [--json] [--verify]``: which models of the registry are on this machine.

Prints each model (gen3c, tokenizer, t5, depth, decoders) as found (with its
path) or missing (with the command that gets it). Nothing is downloaded.
Exit status 0 even when models are missing (``--strict`` makes it 1).
"""

from __future__ import annotations

import argparse
import json

from lyra.model.registry import check_models, load_registry, user_registry_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["check"], help="check: list each model as found or missing")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of text")
    parser.add_argument("--verify", action="store_true", help="also check MD5 sums where the registry knows them (slow)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a model is missing")


def run(args: argparse.Namespace) -> int:
    rows = check_models(load_registry(), verify=args.verify)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"model registry: defaults + {user_registry_file()}")
        for row in rows:
            if row["found"]:
                extra = "" if row["md5_ok"] is None else (", md5 ok" if row["md5_ok"] else ", MD5 MISMATCH")
                print(f"  found    {row['name']:<18} {row['path']}{extra}")
            else:
                print(f"  missing  {row['name']:<18} {row['description']}\n           get it: {row['hint']}")
    missing = [r for r in rows if not r["found"]]
    bad = [r for r in rows if r["md5_ok"] is False]
    return 1 if (args.strict and missing) or bad else 0

"""``lyra info PATH [--json]``: what a scene file or sequence folder holds.

Reports kind (static or sequence), frame and splat counts, SH degree, the
bounding box of the centres, ranges of opacity, scale and base colour, and
any warnings raised while loading (e.g. values that look already activated).
"""

from __future__ import annotations

import argparse
import json
import warnings

import torch

from lyra.scene import GaussianSequence, load
from lyra.scene.formats import detect_format


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="scene file (.ply, .compressed.ply, .splat, Lyra tensor) or sequence folder/.zip")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _range(values: torch.Tensor) -> list[float] | None:
    if values.numel() == 0:
        return None
    return [float(values.min()), float(values.max())]


def describe(path) -> dict:
    """The facts ``lyra info`` prints, as a JSON-ready dict."""
    fmt = detect_format(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = load(path)
    frames = scene.frames if isinstance(scene, GaussianSequence) else [scene]
    means = torch.cat([f.means for f in frames])
    opacities = torch.cat([f.opacities for f in frames])
    scales = torch.cat([f.scales for f in frames])
    rgb = torch.cat([f.rgb() for f in frames])
    info = {
        "path": str(path),
        "format": fmt,
        "kind": "sequence" if isinstance(scene, GaussianSequence) else "static",
        "num_frames": len(frames),
        "num_gaussians": [len(f) for f in frames] if isinstance(scene, GaussianSequence) else len(scene),
        "sh_degree": scene.sh_degree,
        "bbox": None if len(means) == 0 else {"min": means.min(0).values.tolist(), "max": means.max(0).values.tolist()},
        "opacity_range": _range(opacities),
        "scale_range": _range(scales),
        "rgb_range": _range(rgb),
        "extras": sorted(frames[0].extras),
        "warnings": [str(w.message) for w in caught],
    }
    if isinstance(scene, GaussianSequence):
        info["fps"] = scene.fps
        info["duration_s"] = scene.duration
    return info


def _short(value):
    """Floats to 4 significant digits, recursively, for the text report."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, list):
        return [_short(v) for v in value]
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def run(args: argparse.Namespace) -> int:
    info = describe(args.path)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "warnings":
            continue
        print(f"{key:>14}: {_short(value)}")
    for message in info["warnings"]:
        print(f"{'warning':>14}: {message}")
    return 0

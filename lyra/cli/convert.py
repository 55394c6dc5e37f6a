"""``lyra convert IN OUT [--format F] [--sh-degree N] [--overwrite]``: rewrite a scene in another format.

Input format is detected from content; the output format comes from
``--format`` or OUT's name (``.ply``, ``.compressed.ply``, ``.splat``,
``.spz``, ``.sog``, ``meta.json`` (unbundled SOG), ``.glb`` (glTF), ``.usdz``/``.usd``/
``.usda``/``.usdc`` (OpenUSD; a 4D clip as time samples), no suffix -> sequence
folder). A 4D clip written to ``.glb`` becomes a folder of GLB frames (``sequence-glb``). OUT is never replaced without ``--overwrite``. ``--decimate N|P%``
merges neighbouring splats (:func:`lyra.edit.simplify.simplify`) down to N
splats, or P percent, per frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lyra.errors import SceneFileError
from lyra.fileio import ensure_writable_folder
from lyra.scene import GaussianSequence, load, save
from lyra.scene.formats import FORMAT_TABLE, sequence_format_for, writable_formats
from lyra.scene.formats.detect import format_from_name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="scene file or sequence folder/.zip to read")
    parser.add_argument("output", help="file or folder to write")
    parser.add_argument("--format", choices=writable_formats(), default=None, help="output format (default: from OUT's name)")
    parser.add_argument("--sh-degree", type=int, choices=range(4), default=None, metavar="N",
                        help="truncate or zero-pad SH to degree N (0-3)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--decimate", default=None, metavar="N|P%",
                        help="merge neighbouring splats down to N splats (or P%% of them) per frame")
    parser.add_argument("--drop-invalid", action="store_true", help="drop splats with NaN/Inf or zero quaternions")
    parser.add_argument("--collider", action="store_true",
                        help="USD only: embed an invisible collision mesh (UsdPhysics) of the scene (a clip: its first frame)")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise SceneFileError(output, "an output path that does not exist (or --overwrite)", "an existing file or folder")
    fmt = args.format or format_from_name(output)
    if args.collider and fmt != "usd":
        raise SceneFileError(output, "a USD output (.usd, .usda, .usdc, .usdz) for --collider", f"format {fmt!r}")
    ensure_writable_folder(output)  # an unwritable or uncreatable folder fails before the (long) load
    scene = load(args.input, drop_invalid=args.drop_invalid)
    if isinstance(scene, GaussianSequence) and not FORMAT_TABLE[fmt].sequence:
        if len(scene) == 1:
            scene = scene.frames[0]
        elif sequence_format_for(fmt):
            fmt = sequence_format_for(fmt)  # a clip to .glb: a folder of GLB frames
        else:
            raise SceneFileError(args.input, f"a static scene to write as {fmt}", f"a sequence of {len(scene)} frames")
    if args.decimate is not None:
        from lyra.edit.simplify import parse_target, simplify

        def decimate(g):
            return simplify(g, parse_target(args.decimate, len(g)))

        scene = scene.map(decimate) if isinstance(scene, GaussianSequence) else decimate(scene)
    options = {}
    if args.collider:
        from lyra.scene.mesh import scene_collider

        options["collider"] = scene_collider(scene)
    save(scene, output, format=fmt, sh_degree=args.sh_degree, overwrite=args.overwrite, **options)
    frames = f"{len(scene)} frames" if isinstance(scene, GaussianSequence) else f"{len(scene)} splats"
    print(f"wrote {output} ({frames})")
    return 0

"""``lyra share SCENE --out PAGE.html [--max-mb 50]``: one self-contained HTML page that shows the scene offline.

viser's own embedding (:mod:`lyra.render.share`): its single-file web client with the recorded scene
inlined, no network needed. A 4D scene gets viser's playback bar. A page over ``--max-mb`` is rebuilt
from merged splats (:func:`lyra.edit.simplify.simplify`) until it fits, and says so. Writes exactly one
file, atomically; an existing one is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lyra.render.share import DEFAULT_MAX_MB


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scene", help="scene file or sequence folder (anything lyra.scene.load reads)")
    parser.add_argument("--out", required=True, help="the .html page to write")
    parser.add_argument("--max-mb", type=float, default=DEFAULT_MAX_MB,
                        help=f"size budget in MB; a larger page is decimated to fit (default {DEFAULT_MAX_MB:g})")
    parser.add_argument("--title", default=None, help="page title (default: the file name)")
    parser.add_argument("--overwrite", action="store_true", help="replace PAGE if it exists")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from lyra.cli.progress_bar import progress_bar
    from lyra.errors import InputDataError, SceneFileError
    from lyra.fileio import ensure_writable_folder
    from lyra.render.share import write_share_page
    from lyra.scene import load

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputDataError(f"--out: a share page is an .html file, found {out.name!r}")
    if out.exists() and not args.overwrite:
        raise SceneFileError(out, "a new path (or --overwrite)", "an existing file")
    if not args.max_mb > 0:
        raise InputDataError(f"--max-mb: expected a positive size, found {args.max_mb:g}")
    ensure_writable_folder(out)
    scene = load(args.scene)
    with progress_bar("lyra share", enabled=not args.no_progress) as progress:
        page = write_share_page(scene, out, max_mb=args.max_mb, title=args.title, overwrite=args.overwrite,
                                progress=progress)
    frames = f", {len(page.splats)} frames" if len(page.splats) > 1 else ""
    print(f"wrote {out} ({page.size_bytes / 1e6:.1f} MB, {sum(page.splats):,} splats{frames})")
    for note in page.notes:
        print(f"note: {note}")
    return 0

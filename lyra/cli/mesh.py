"""``lyra mesh SCENE --out MESH.ply|.obj|.glb``: a triangle mesh (or a collider) of a splat scene.

The surface of the opacity field (:func:`lyra.scene.mesh.mesh_from_gaussians`), or with
``--from-depth`` of depth maps rendered along two orbits and fused (:mod:`lyra.render.depth_fusion`).
``--collider`` writes the coarse, decimated, closed variant (:func:`lyra.scene.mesh.collider_from_gaussians`).
A 4D scene gives one mesh per frame of ``--frames`` (default: the first), named ``MESH_frameNNNN.ply``.
Nothing is replaced without ``--overwrite``; every file is written atomically.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from lyra.errors import InputDataError, SceneFileError
from lyra.scene.mesh import COLLIDER_FACES, DEFAULT_LEVEL, mesh_format
from lyra.scene.opacity_field import DEFAULT_RESOLUTION


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scene", help="scene file or sequence folder (anything lyra.scene.load reads)")
    parser.add_argument("--out", required=True, help="output mesh: .ply, .obj or .glb")
    parser.add_argument("--voxel", type=float, default=None, metavar="SIZE",
                        help="voxel edge in scene units (default: the scene's longest side / --resolution)")
    parser.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION,
                        help=f"voxels along the longest side when --voxel is not given (default {DEFAULT_RESOLUTION})")
    parser.add_argument("--faces", type=int, default=None, metavar="N",
                        help=f"decimate to at most N faces (default: none; {COLLIDER_FACES} with --collider)")
    parser.add_argument("--level", type=float, default=DEFAULT_LEVEL,
                        help=f"opacity level of the surface (default {DEFAULT_LEVEL})")
    parser.add_argument("--collider", action="store_true", help="a coarse, simplified, closed collision mesh")
    parser.add_argument("--from-depth", action="store_true",
                        help="fuse depth maps rendered along two orbits (TSDF) instead of the opacity field")
    parser.add_argument("--views", type=int, default=24, help="--from-depth: number of rendered views (default 24)")
    parser.add_argument("--frames", default="0", help="4D scene: frames to mesh: all, 0,5,9 or start:stop:step (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def frame_indices(text: str, num_frames: int) -> list[int]:
    """``all`` | ``a,b,c`` | ``start:stop[:step]`` -> frame indices in ``0..num_frames-1``; InputDataError else."""
    from lyra.pipeline.request import parse_times

    try:
        indices = parse_times(text)
    except InputDataError:
        raise InputDataError(f"--frames: expected all, a list like 0,5,9 or start:stop:step, found {text!r}") from None
    indices = list(range(num_frames)) if indices is None else indices
    bad = [i for i in indices if not 0 <= i < num_frames]
    if not indices or bad:
        raise InputDataError(f"--frames: expected frame indices in 0..{num_frames - 1}, found {text!r}")
    return indices


def output_paths(out: Path, frames: list[int] | None) -> list[Path]:
    """One path per frame (``NAME_frameNNNN.ext``), or ``[out]`` for a static scene."""
    if frames is None:
        return [out]
    return [out.with_name(f"{out.stem}_frame{i:04d}{out.suffix}") for i in frames]


def check_arguments(args: argparse.Namespace) -> None:
    if args.voxel is not None and not args.voxel > 0:
        raise InputDataError(f"--voxel: expected a positive size, found {args.voxel:g}")
    if args.resolution < 8:
        raise InputDataError(f"--resolution: expected at least 8 voxels, found {args.resolution}")
    if args.faces is not None and args.faces < 4:
        raise InputDataError(f"--faces: expected at least 4, found {args.faces}")
    if not (math.isfinite(args.level) and args.level > 0):
        raise InputDataError(f"--level: expected a positive opacity, found {args.level:g}")
    if args.views < 2:
        raise InputDataError(f"--views: expected at least 2, found {args.views}")
    if args.collider and args.from_depth:
        raise InputDataError("--collider and --from-depth: choose one (the collider comes from the opacity field)")


def run(args: argparse.Namespace) -> int:
    import trimesh

    from lyra.cli.progress_bar import progress_bar
    from lyra.fileio import ensure_writable_folder
    from lyra.progress import stages
    from lyra.scene import GaussianSequence, load
    from lyra.scene.mesh import collider_from_gaussians, mesh_from_gaussians, write_mesh

    check_arguments(args)
    out = Path(args.out)
    mesh_format(out)
    ensure_writable_folder(out)
    scene = load(args.scene)
    if isinstance(scene, GaussianSequence):
        frames = frame_indices(args.frames, len(scene))
        scenes = [scene.frames[i] for i in frames]
    else:
        frames, scenes = None, [scene]
    targets = output_paths(out, frames)
    taken = [str(t) for t in targets if t.exists()]
    if taken and not args.overwrite:
        raise SceneFileError(taken[0], "a new path (or --overwrite)", "an existing file")

    def make(g, progress):
        if args.collider:
            vertices, faces = collider_from_gaussians(g, max_faces=args.faces or COLLIDER_FACES, level=args.level,
                                                      progress=progress)
            return trimesh.Trimesh(vertices, faces, process=False)
        if args.from_depth:
            from lyra.render.depth_fusion import mesh_from_depth

            return mesh_from_depth(g, args.voxel, views=args.views, max_faces=args.faces,
                                   resolution=args.resolution, progress=progress)
        return mesh_from_gaussians(g, args.voxel, max_faces=args.faces, level=args.level,
                                   resolution=args.resolution, progress=progress)

    with progress_bar("lyra mesh", enabled=not args.no_progress) as progress:
        for g, target, part in zip(scenes, targets, stages(progress, [1.0] * len(scenes)), strict=True):
            mesh = make(g, part)
            write_mesh(mesh, target, overwrite=args.overwrite)
            closed = "closed" if mesh.is_watertight else "open"
            print(f"wrote {target} ({len(mesh.vertices)} vertices, {len(mesh.faces)} faces, {closed})")
    return 0

"""``lyra distill make-data --teacher gen3c``: GEN3C trajectories of many images as SDG training data.

Each image of ``--images`` becomes a scene ``ROOT/train/<stem>/<i>/`` (``i`` = Lyra trajectory
index). The work units (image, trajectory) are split over ranks and finished trajectory folders
are skipped (:func:`lyra.distill.make_data.run_units`). Per image, the input stage of the Lyra
pipeline (depth, fitting to the generation size) runs once and is cached in
``ROOT/.work/<stem>/``; the teacher (GEN3C from the model registry unless given) is loaded only
when a trajectory is still missing. Depth comes from ``--depth-dir/<stem>.{npy,exr,png}`` when
present, else from the registry's depth model.
"""

from __future__ import annotations

import os
from pathlib import Path

from lyra.distill.make_data import Unit, rank_and_world, run_units
from lyra.errors import InputDataError
from lyra.pipeline.depth import DepthEstimator
from lyra.pipeline.generate import GenerateSettings, prepare_input, trajectory_cameras
from lyra.pipeline.inputs import read_input
from lyra.progress import Progress
from lyra.render.trajectories import LYRA_TRAJECTORY_INDEX
from lyra.teacher.base import TrajectoryOutput

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEPTH_SUFFIXES = (".npy", ".exr", ".png")


def image_units(images_dir: str | os.PathLike, trajectories) -> list[Unit]:
    folder = Path(images_dir)
    if not folder.is_dir():
        raise InputDataError(f"{folder}: images folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise InputDataError(f"{folder}: expected images ({', '.join(IMAGE_SUFFIXES)}), found none")
    indices = [LYRA_TRAJECTORY_INDEX.index(t) for t in trajectories]
    return [Unit("train", p.stem, str(p), i) for p in images for i in indices]


def make_gen3c_data(
    images_dir: str | os.PathLike,
    root: str | os.PathLike,
    *,
    settings: GenerateSettings | None = None,
    teacher=None,
    estimator: DepthEstimator | None = None,
    depth_dir: str | os.PathLike | None = None,
    rank: int | None = None,
    world: int | None = None,
    progress: Progress | None = None,
) -> list[Unit]:
    """Make this rank's missing trajectories; returns the units it made."""
    settings = settings or GenerateSettings()
    root = Path(root)
    env_rank, env_world = rank_and_world()
    rank, world = env_rank if rank is None else rank, env_world if world is None else world
    units = image_units(images_dir, settings.trajectories)
    prepared: dict[str, tuple] = {}
    loaded: dict[str, object] = {}

    def depth_file(stem: str) -> Path | None:
        if depth_dir is None:
            return None
        found = [Path(depth_dir) / f"{stem}{s}" for s in DEPTH_SUFFIXES if (Path(depth_dir) / f"{stem}{s}").is_file()]
        return found[0] if found else None

    def make(unit: Unit) -> TrajectoryOutput:
        if unit.source not in prepared:
            given = depth_file(unit.scene)
            depth_model = estimator
            if given is None and depth_model is None:
                from lyra.pipeline.preview import default_depth_estimator

                depth_model = loaded.setdefault("estimator", default_depth_estimator("cpu"))
            prepared.clear()  # one image at a time in memory (units of an image are consecutive per rank)
            prepared[unit.source] = prepare_input(
                read_input(unit.source), settings, root / ".work" / unit.scene, depth_file=given,
                estimator=depth_model, intrinsics=None, png_units_per_metre=1000.0, progress=None,
            )
        images, depth, intrinsics, _ = prepared[unit.source]
        if "teacher" not in loaded:
            if teacher is None:
                from lyra.pipeline.generate_models import default_teacher

                loaded["teacher"] = default_teacher(settings)
            else:
                loaded["teacher"] = teacher
        name = LYRA_TRAJECTORY_INDEX[unit.index]
        camera = trajectory_cameras(name, settings, intrinsics[0])
        output = loaded["teacher"].generate(images[0], [camera], depth=depth[0], intrinsics=intrinsics[0], names=[name])
        return output.trajectories[0]

    return run_units(root, units, make, rank, world, progress)

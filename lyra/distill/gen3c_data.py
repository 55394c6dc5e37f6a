"""``lyra distill make-data --teacher gen3c``: a teacher's trajectories of many images as SDG training data.

Each image of ``--images`` becomes one :class:`lyra.pipeline.request.GenerateRequest` (the template's
options, that image as ``input``, ``--depth-dir/<stem>.{npy,exr,png}`` as its ``depth`` when present)
and its trajectories become units of the one engine, :func:`lyra.pipeline.teach.teach`: scene
``ROOT/train/<stem>/<i>/`` (``i`` = the trajectory folder, Lyra's index), sharded round-robin over
ranks, finished folders skipped. Per image, the input stage of the Lyra pipeline (depth, fitting to
the generation size) runs once per rank and is kept in ``ROOT/.work/<stem>.rank<r>/``; the teacher (the request's, from
the model registry unless given) is loaded only when a trajectory is still missing.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from lyra.device import resolve_device
from lyra.distill.make_data import rank_and_world, unit_folder
from lyra.errors import InputDataError
from lyra.pipeline.depth import DepthEstimator
from lyra.pipeline.generate import input_key, prepare_input, teach_trajectories, trajectory_key
from lyra.pipeline.generate_models import teacher_identity
from lyra.pipeline.inputs import read_input
from lyra.pipeline.request import GenerateRequest
from lyra.pipeline.teach import Unit, is_finished, shard
from lyra.progress import Progress, subrange

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEPTH_SUFFIXES = (".npy", ".exr", ".png")


def image_requests(images_dir: str | os.PathLike, template: GenerateRequest,
                   depth_dir: str | os.PathLike | None = None) -> list[GenerateRequest]:
    """One request per image of ``images_dir`` (sorted): the template with that ``input`` and its ``depth`` file."""
    folder = Path(images_dir)
    if not folder.is_dir():
        raise InputDataError(f"images: {folder}: folder not found")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise InputDataError(f"images: {folder}: expected images ({', '.join(IMAGE_SUFFIXES)}), found none")
    requests = []
    for image in images:
        found = [Path(depth_dir) / f"{image.stem}{s}" for s in DEPTH_SUFFIXES] if depth_dir is not None else []
        depth = next((p for p in found if p.is_file()), None)
        requests.append(dataclasses.replace(template, input=str(image), depth=str(depth) if depth else None, output=None))
    return requests


def make_gen3c_data(
    images_dir: str | os.PathLike,
    root: str | os.PathLike,
    *,
    request: GenerateRequest,
    teacher=None,
    estimator: DepthEstimator | None = None,
    depth_dir: str | os.PathLike | None = None,
    rank: int | None = None,
    world: int | None = None,
    progress: Progress | None = None,
) -> list[Unit]:
    """Make this rank's missing trajectories of every image; returns the units it made.

    ``request`` is the template (trajectories, size, frames, steps, seed, teacher, device, depth model
    and units); its ``input`` is replaced by each image.
    """
    root = Path(root)
    env_rank, env_world = rank_and_world()
    rank, world = env_rank if rank is None else rank, env_world if world is None else world
    requests = image_requests(images_dir, request, depth_dir)
    loaded: dict[str, object] = {}

    def depth_model(req: GenerateRequest):
        if req.depth is not None:
            return None
        if estimator is not None:
            return estimator
        if "estimator" not in loaded:
            from lyra.pipeline.request import _depth_estimator

            loaded["estimator"] = _depth_estimator(req, resolve_device(req.device))
        return loaded["estimator"]

    def get_teacher():
        if "teacher" not in loaded:
            from lyra.pipeline.generate_models import default_teacher

            loaded["teacher"] = teacher if teacher is not None else default_teacher(request)
        return loaded["teacher"]

    identity = teacher_identity(request, teacher)
    units, images = [], {}
    for req in requests:
        stem = Path(req.input).stem
        frames = read_input(req.input)
        model = depth_model(req)
        key = input_key(frames, req, model, req.intrinsics)
        images[req.input] = (req, frames, model)
        units += [Unit(str(unit_folder(root, "train", stem, t)), stem, t, req.input, trajectory_key(req, t, key, identity))
                  for t in req.trajectories]
    mine = [u for u in shard(units, rank, world) if not is_finished(u.folder, u.key)]
    sources = list(dict.fromkeys(u.source for u in mine))  # this rank's images with work left, in order
    made = []
    for n, source in enumerate(sources):
        req, frames, model = images[source]
        step = subrange(progress, n / len(sources), (n + 1) / len(sources), f"{Path(source).stem}: ")
        images_, depth, intrinsics, poses = prepare_input(frames, req, root / ".work" / f"{Path(source).stem}.rank{rank}",
                                                          estimator=model, intrinsics=req.intrinsics, progress=None)
        todo = [u for u in mine if u.source == source]
        made += teach_trajectories(get_teacher, images_, depth, intrinsics, poses, req, todo, step, rank=0, world=1)
    return made

"""Teacher data for self-distillation, written as SDG folders: sharded over ranks and resumable.

Work is a list of units, one per (scene, trajectory). Rank ``r`` of ``W`` (torchrun / accelerate
set ``RANK`` and ``WORLD_SIZE``) takes units ``r, r + W, ...``. A unit whose trajectory folder is
finished (latent, pose, intrinsics, rgb and depth all present; each file is written atomically
and the depth zip last) is skipped, so a killed job restarts where it stopped.

Layout written::

    ROOT/train/<scene>/<i>/{rgb,latent,pose,intrinsics,depth}/<scene>.*    i = Lyra trajectory index
    ROOT/eval/<scene>/...                                                  (synthetic only)
    ROOT/<split>/<scene>/geometry.npz                                      synthetic: true surface points
    ROOT/tokenizer/                                                        the tiny random tokenizer, when used
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from lyra.distill.data import GEOMETRY_FILE
from lyra.fileio import atomic_write
from lyra.pipeline.sdg import write_trajectory
from lyra.progress import Progress, report
from lyra.render import LYRA_TRAJECTORY_INDEX
from lyra.teacher.base import TrajectoryOutput
from lyra.teacher.synthetic import random_scene, synthetic_scene

TRAJECTORY_FILES = ("latent/{n}.pkl", "pose/{n}.npz", "intrinsics/{n}.npz", "rgb/{n}.mp4", "depth/{n}.zip")


class TrajectoryTeacher(Protocol):
    """What make-data needs of a teacher: one trajectory of one source at a time."""

    def trajectory(self, source: str, index: int) -> TrajectoryOutput: ...


@dataclasses.dataclass(frozen=True, order=True)
class Unit:
    split: str
    scene: str  # folder name (and file NAME) of the scene
    source: str  # what the teacher generates from (an image path, a synthetic seed)
    index: int  # Lyra trajectory index (0 left, 1 right, 2 up, 3 zoom_out, 4 zoom_in, 5 clockwise)


def rank_and_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from the environment torchrun / accelerate set; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard(units: Sequence[Unit], rank: int, world: int) -> list[Unit]:
    return list(units[rank::world])


def trajectory_folder(root: Path, unit: Unit) -> Path:
    return root / unit.split / unit.scene / str(unit.index)


def is_finished(folder: Path, name: str) -> bool:
    return all((folder / f.format(n=name)).is_file() for f in TRAJECTORY_FILES)


def write_teacher_trajectory(folder: Path, name: str, traj: TrajectoryOutput) -> None:
    # The writer goes latent, pose, intrinsics, rgb, then depth: the depth zip marks the folder finished.
    write_trajectory(
        folder, latents=traj.latents, c2w=traj.camera.c2w, intrinsics=traj.camera.intrinsics, frames=traj.frames,
        depth=traj.depth, name=name,
    )


def run_units(
    root: str | os.PathLike,
    units: Sequence[Unit],
    make: Callable[[Unit], TrajectoryOutput],
    rank: int = 0,
    world: int = 1,
    progress: Progress | None = None,
) -> list[Unit]:
    """Make this rank's unfinished units; returns the units it made."""
    root = Path(root)
    mine = [u for u in shard(units, rank, world) if not is_finished(trajectory_folder(root, u), u.scene)]
    for i, unit in enumerate(mine):
        report(progress, i / max(len(mine), 1), f"{unit.split}/{unit.scene} trajectory {unit.index}")
        write_teacher_trajectory(trajectory_folder(root, unit), unit.scene, make(unit))
    report(progress, 1.0, "done")
    return mine


# ------------------------------------------------------------------ synthetic teacher
class SyntheticTeacher:
    """:mod:`lyra.teacher.synthetic` behind the make-data protocol (source = the scene seed)."""

    def __init__(self, vae, width: int, height: int, latent_frames: int):
        self.vae, self.width, self.height, self.latent_frames = vae, width, height, latent_frames

    def trajectory(self, source: str, index: int) -> TrajectoryOutput:
        scene = synthetic_scene(
            int(source), self.vae, latent_frames=self.latent_frames, width=self.width, height=self.height,
            trajectories=(LYRA_TRAJECTORY_INDEX[index],), trajectory_seed=index,
        )
        return scene.trajectories[0]


def synthetic_units(train_scenes: int, eval_scenes: int, trajectories: Sequence[int], seed: int) -> list[Unit]:
    units = []
    for split, count, offset in (("train", train_scenes, 0), ("eval", eval_scenes, 1_000_000)):
        for s in range(count):
            scene_seed = seed + offset + s
            units += [Unit(split, f"scene_{scene_seed:07d}", str(scene_seed), i) for i in trajectories]
    return units


def write_geometry(root: Path, units: Sequence[Unit]) -> None:
    for unit in {(u.split, u.scene, u.source): u for u in units}.values():
        path = root / unit.split / unit.scene / GEOMETRY_FILE
        if not path.is_file():
            buffer = io.BytesIO()
            np.savez(buffer, points=random_scene(int(unit.source)).means.numpy())
            with atomic_write(path, "wb") as handle:
                handle.write(buffer.getvalue())


def make_synthetic_data(
    root: str | os.PathLike,
    *,
    train_scenes: int,
    eval_scenes: int,
    width: int = 96,
    height: int = 64,
    latent_frames: int = 2,
    trajectories: Sequence[str] = LYRA_TRAJECTORY_INDEX,
    seed: int = 1000,
    vae=None,
    rank: int | None = None,
    world: int | None = None,
    progress: Progress | None = None,
) -> Path:
    """Synthetic SDG data under ``root`` (tiny random tokenizer saved to ``root/tokenizer`` unless ``vae``)."""
    from lyra.teacher.synthetic import tiny_random_tokenizer

    root = Path(root)
    env_rank, env_world = rank_and_world()
    rank, world = env_rank if rank is None else rank, env_world if world is None else world
    if vae is None:
        vae = tiny_random_tokenizer()
        if rank == 0 and not (root / "tokenizer" / "config.json").is_file():
            from lyra.fileio import atomic_directory

            with atomic_directory(root / "tokenizer") as tmp:
                vae.save_pretrained(tmp)
    indices = [LYRA_TRAJECTORY_INDEX.index(t) for t in trajectories]
    units = synthetic_units(train_scenes, eval_scenes, indices, seed)
    teacher = SyntheticTeacher(vae, width, height, latent_frames)
    run_units(root, units, lambda u: teacher.trajectory(u.source, u.index), rank, world, progress)
    write_geometry(root, shard(units, rank, world))
    return root

"""Teacher data for self-distillation, written as SDG folders through the one engine, :mod:`lyra.pipeline.teach`.

Work is a list of units, one per (scene, trajectory); :func:`lyra.pipeline.teach.teach` shards them
round-robin over ranks (``RANK`` / ``WORLD_SIZE``, as torchrun and accelerate set them), skips the
finished ones (``stage.json`` with the unit's key) and writes each folder atomically, so a killed job
restarts where it stopped.

Layout written::

    ROOT/train/<scene>/<i>/{rgb,latent,pose,intrinsics,depth}/<scene>.*    i = the trajectory folder (Lyra index)
    ROOT/eval/<scene>/...                                                  (synthetic only)
    ROOT/<split>/<scene>/geometry.npz                                      synthetic: true surface points
    ROOT/tokenizer/                                                        the tiny random tokenizer, when used
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lyra.distill.data import GEOMETRY_FILE
from lyra.fileio import atomic_write
from lyra.model.checkpoint import module_fingerprint
from lyra.pipeline.teach import Unit, rank_and_world, shard, stage_key, teach
from lyra.progress import Progress
from lyra.render.trajectories import LYRA_TRAJECTORY_INDEX, TRAJECTORY_FOLDERS
from lyra.teacher.synthetic import VERSION, SyntheticTeacher, random_scene

__all__ = ["make_synthetic_data", "rank_and_world", "synthetic_units", "unit_folder"]


def unit_folder(root: Path, split: str, scene: str, trajectory: str) -> Path:
    """``ROOT/<split>/<scene>/<trajectory folder>``."""
    return root / split / scene / TRAJECTORY_FOLDERS[trajectory]


def synthetic_units(root: Path, train_scenes: int, eval_scenes: int, trajectories: Sequence[str], seed: int,
                    options: dict) -> list[Unit]:
    """One unit per (scene, trajectory); ``options`` (size, frames, tokenizer) go into every key."""
    units = []
    for split, count, offset in (("train", train_scenes, 0), ("eval", eval_scenes, 1_000_000)):
        for s in range(count):
            scene_seed = seed + offset + s
            scene = f"scene_{scene_seed:07d}"
            units += [Unit(str(unit_folder(root, split, scene, t)), scene, t, str(scene_seed),
                           stage_key({"synthetic": VERSION, "seed": scene_seed, "trajectory": t, **options}))
                      for t in trajectories]
    return units


def write_geometry(units: Sequence[Unit]) -> None:
    """Each scene's true surface points (``geometry.npz`` beside its trajectory folders), once."""
    for unit in {(Path(u.folder).parent, u.source): u for u in units}.values():
        path = Path(unit.folder).parent / GEOMETRY_FILE
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
    options = {"size": [width, height], "latent_frames": latent_frames, "tokenizer": module_fingerprint(vae)}
    units = synthetic_units(root, train_scenes, eval_scenes, list(trajectories), seed, options)
    teacher = SyntheticTeacher(vae, width, height, latent_frames)
    teach(units, lambda u, step: teacher.trajectory(u.source, u.trajectory), rank=rank, world=world, progress=progress)
    write_geometry(shard(units, rank, world))
    return root

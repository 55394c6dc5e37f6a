"""The one teaching engine: (teacher x units) -> SDG trajectory folders, atomic, resumable, sharded over ranks.

A :class:`Unit` is one trajectory folder to make: where it goes, the file NAME inside, the trajectory,
what the teacher generates from, and a key of everything the folder depends on (input, trajectory,
seed, steps, ..., the teacher's class and weights). :func:`teach` makes this rank's units:

* **sharded**: rank ``r`` of ``W`` (``RANK`` / ``WORLD_SIZE``, as torchrun, srun + torchrun or
  accelerate set them) takes units ``r, r + W, r + 2W, ...`` (round-robin);
* **one "finished" rule** (:func:`is_finished`): the folder holds ``stage.json`` with the unit's key.
  Each folder is written in a temporary folder and renamed into place (:func:`lyra.fileio.atomic_directory`),
  ``stage.json`` included, so a folder is either complete or absent, and a killed rank leaves nothing
  half-written;
* **resumable**: finished units are skipped, a unit whose key changed (another seed, decoder, teacher
  weights, ...) is made again.

The layout written by :func:`write_unit` is the official SDG one (:func:`lyra.pipeline.sdg.write_trajectory`):
``<folder>/{rgb,latent,pose,intrinsics,depth}/NAME.*`` plus ``stage.json``, which the official readers ignore.
With more than one rank, :func:`barrier` waits for every rank (``torch.distributed`` on gloo, or NCCL on CUDA);
the caller's rank 0 then decodes.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from lyra.errors import LyraError
from lyra.fileio import atomic_directory, atomic_write
from lyra.pipeline.sdg import write_trajectory
from lyra.progress import Progress, report, subrange
from lyra.teacher.base import TrajectoryOutput

STAGE_FILE = "stage.json"
RANK_TIMEOUT_ENV = "LYRA_RANK_TIMEOUT_S"  # how long a rank waits for the others (default 6 hours)
DEFAULT_RANK_TIMEOUT_S = 6 * 3600


@dataclasses.dataclass(frozen=True)
class Unit:
    """One trajectory folder to make (see the module docstring)."""

    folder: str  # the trajectory folder, e.g. WORK/sdg/0 or ROOT/train/<scene>/0
    name: str  # NAME of latent/NAME.pkl, rgb/NAME.mp4, ...
    trajectory: str  # the trajectory's name (left, right, ..., custom)
    source: str  # what the teacher generates from (an image path, a scene seed)
    key: str  # digest of everything the folder depends on


def stage_key(payload: dict) -> str:
    """A short, stable digest of ``payload`` (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_stage_key(folder: str | os.PathLike) -> str | None:
    try:
        return json.loads((Path(folder) / STAGE_FILE).read_text())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_finished(folder: str | os.PathLike, key: str) -> bool:
    """The one "finished" rule: ``folder/stage.json`` holds ``key`` (written last, inside the atomic folder)."""
    return read_stage_key(folder) == key


def mark_finished(folder: str | os.PathLike, key: str, **info) -> None:
    """Write ``stage.json`` (the key, then ``info``) into ``folder``; deterministic bytes for equal inputs."""
    with atomic_write(Path(folder) / STAGE_FILE, "w") as handle:
        json.dump({"key": key, **info}, handle, sort_keys=True)


def rank_and_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from the environment torchrun / accelerate set; ``(0, 1)`` otherwise."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise LyraError("RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise LyraError(f"RANK must lie in 0..WORLD_SIZE-1, found RANK={rank}, WORLD_SIZE={world}")
    return rank, world


def shard(units: Sequence[Unit], rank: int, world: int) -> list[Unit]:
    """This rank's units, round-robin: ``units[rank::world]``."""
    return list(units[rank::world])


def write_unit(unit: Unit, output: TrajectoryOutput) -> Path:
    """One finished trajectory folder (official layout + ``stage.json``), swapped in atomically."""
    with atomic_directory(unit.folder) as tmp:
        write_trajectory(tmp, latents=output.latents, c2w=output.camera.c2w, intrinsics=output.camera.intrinsics,
                         frames=output.frames, depth=output.depth, name=unit.name)
        mark_finished(tmp, unit.key, trajectory=unit.trajectory)
    return Path(unit.folder)


def teach(
    units: Sequence[Unit],
    make: Callable[[Unit, Progress | None], TrajectoryOutput],
    *,
    rank: int | None = None,
    world: int | None = None,
    progress: Progress | None = None,
) -> list[Unit]:
    """Make this rank's unfinished units with ``make(unit, progress)``; returns the units it made.

    ``rank`` / ``world`` default to the environment's (:func:`rank_and_world`). ``make`` is called only for
    missing units, so a caller can load its teacher lazily (loading GEN3C takes minutes).
    """
    env_rank, env_world = rank_and_world()
    rank, world = env_rank if rank is None else rank, env_world if world is None else world
    mine = shard(units, rank, world)
    made = []
    for n, unit in enumerate(mine):
        step = subrange(progress, n / len(mine), (n + 1) / len(mine), f"trajectory {n + 1}/{len(mine)} ({unit.trajectory}): ")
        if is_finished(unit.folder, unit.key):
            report(step, 1.0, "reused")
            continue
        write_unit(unit, make(unit, step))
        made.append(unit)
        report(step, 1.0, "written")
    report(progress, 1.0, "done")
    return made


# --------------------------------------------------------------------------- ranks
_OWNED_GROUP = False  # whether this module started the process group (and so may end it)


def start_ranks(world: int, device: torch.device) -> None:
    """Join the ``torch.distributed`` group of ``world`` ranks (gloo on CPU, NCCL on CUDA) when not in one yet.

    The group comes from the environment torchrun sets (``MASTER_ADDR``, ``MASTER_PORT``, ``RANK``,
    ``WORLD_SIZE``); a rank waits up to ``LYRA_RANK_TIMEOUT_S`` seconds (6 hours) for the others.
    """
    global _OWNED_GROUP
    import torch.distributed as dist

    if world <= 1 or dist.is_initialized():
        return
    if not dist.is_available():
        raise LyraError("WORLD_SIZE > 1 but this PyTorch has no torch.distributed")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise LyraError(f"WORLD_SIZE > 1 needs {' and '.join(missing)} (start the ranks with torchrun)")
    timeout = float(os.environ.get(RANK_TIMEOUT_ENV, DEFAULT_RANK_TIMEOUT_S))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    _OWNED_GROUP = True


def barrier(world: int) -> None:
    """Wait for every rank (no-op with one rank)."""
    import torch.distributed as dist

    if world <= 1:
        return
    if not dist.is_initialized():
        raise LyraError("barrier: the ranks' process group is not started (start_ranks)")
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def end_ranks() -> None:
    """Leave the process group :func:`start_ranks` started (a group the caller started is left alone)."""
    global _OWNED_GROUP
    import torch.distributed as dist

    if _OWNED_GROUP and dist.is_initialized():
        dist.destroy_process_group()
    _OWNED_GROUP = False

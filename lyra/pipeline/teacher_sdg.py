"""Write a teacher's output as an SDG scene in the official layout (one folder per trajectory).

``write_teacher_output(output, root)`` writes ``root/<trajectory name>/{rgb,latent,pose,intrinsics,depth}/NAME.*``
through :func:`lyra.pipeline.sdg.write_trajectory`, so ``lyra decode root --views ...`` and the official training
code read it. Trajectory names default to their indices ``0, 1, ...`` (the official six are 0..5).
"""

from __future__ import annotations

import os
from pathlib import Path

from lyra.errors import InputDataError
from lyra.pipeline.sdg import write_trajectory
from lyra.progress import Progress, report
from lyra.teacher.base import TeacherOutput


def write_teacher_output(
    output: TeacherOutput, root: str | os.PathLike, *, name: str = "scene", progress: Progress | None = None
) -> list[Path]:
    """One trajectory folder per teacher trajectory under ``root``; returns the folders in order."""
    root = Path(root)
    names = [t.name for t in output.trajectories]
    if len(set(names)) != len(names) or any(not n or "/" in n or n in (".", "..") for n in names):
        raise InputDataError(f"trajectory names must be unique folder names, found {names}")
    folders = []
    for index, trajectory in enumerate(output.trajectories):
        folders.append(
            write_trajectory(
                root / trajectory.name,
                latents=trajectory.latents,
                c2w=trajectory.camera.c2w,
                intrinsics=trajectory.camera.intrinsics,
                frames=trajectory.frames,
                depth=trajectory.depth,
                name=name,
            )
        )
        report(progress, (index + 1) / len(output.trajectories), f"wrote trajectory {trajectory.name}")
    return folders

"""A teacher without a video model: the lifted input image rendered along each trajectory.

It follows the :class:`lyra.teacher.base.Teacher` protocol (and its video mode,
``generate_video``, for 4D), so the whole Lyra pipeline (SDG folders, decoder)
runs on any machine: with tiny random tokenizers and decoders in the tests and
benchmarks, or as a geometry-only stand-in where GEN3C cannot run. Frames are
``lyra.render`` renders (torch backend on CPU) of :func:`lift_image`; latents are
the tokenizer's encoding of those frames, normalised into model space.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.model.tokenizer import encode_video, latent_statistics, normalize_latents
from lyra.pipeline.lift import lift_image
from lyra.progress import Progress, report
from lyra.render.camera import Camera
from lyra.render.render import render
from lyra.teacher.base import TeacherOutput, TrajectoryOutput


class LiftTeacher:
    """Renders lifted frames along trajectories; ``calls`` records the trajectory names it generated."""

    def __init__(self, tokenizer, tokenizer_folder=None):
        self.tokenizer = tokenizer
        self.statistics = latent_statistics(tokenizer, tokenizer_folder)
        self.calls: list[str] = []

    def _trajectory(self, name: str, camera: Camera, scene_at, progress: Progress | None) -> TrajectoryOutput:
        count = camera.batch_shape[0]
        rgbs, depths = [], []
        for i in range(count):
            out = render(scene_at(i), Camera(camera.c2w[i], camera.intrinsics[i], camera.width, camera.height),
                         backend="torch")
            rgbs.append(out.rgb), depths.append(out.depth)
            report(progress, 0.9 * (i + 1) / count, f"frame {i + 1}/{count}")
        rgb = torch.stack(rgbs)  # [F, H, W, 3]
        raw = encode_video(self.tokenizer, rgb.permute(3, 0, 1, 2)[None] * 2 - 1)  # [1, 16, T, h, w]
        latents = normalize_latents(raw.float().cpu(), *self.statistics)[0]
        report(progress, 1.0, "encoded")
        return TrajectoryOutput(name, (rgb * 255).round().to(torch.uint8), latents, camera, torch.stack(depths))

    @torch.inference_mode()
    def generate(self, image: Tensor, trajectories: Sequence[Camera], *, depth: Tensor | None = None,
                 intrinsics: Tensor | None = None, names: Sequence[str] | None = None,
                 progress: Progress | None = None) -> TeacherOutput:
        lifted = lift_image(image, depth, intrinsics)
        names = list(names or [str(i) for i in range(len(trajectories))])
        outputs = []
        for camera, name in zip(trajectories, names, strict=True):
            self.calls.append(name)
            outputs.append(self._trajectory(name, camera, lambda i: lifted, progress))
        return TeacherOutput(outputs, depth, intrinsics)

    @torch.inference_mode()
    def generate_video(self, frames: Tensor, trajectories: Sequence[Camera], *, depth: Tensor, intrinsics: Tensor,
                       c2w: Tensor, names: Sequence[str], progress: Progress | None = None) -> TeacherOutput:
        """Frame ``i`` of each trajectory shows input frame ``i`` lifted with its pose ``c2w[i]``."""
        lifted = [lift_image(frames[i], depth[i], intrinsics[i], c2w=c2w[i]) for i in range(frames.shape[0])]
        outputs = []
        for camera, name in zip(trajectories, names, strict=True):
            self.calls.append(name)
            outputs.append(self._trajectory(name, camera, lambda i: lifted[i], progress))
        return TeacherOutput(outputs)

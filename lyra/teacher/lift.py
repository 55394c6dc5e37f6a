"""The lift teacher: a CPU preview of the trajectories, the lifted input rendered along each camera, holes shown.

It follows the :class:`lyra.teacher.base.Teacher` protocol (and its video mode, ``generate_video``,
for 4D), so the whole Lyra pipeline (SDG folders, decoder) runs on any machine: as the ``lift``
teacher of a request (``GenerateRequest(backend="lyra", teacher="lift")``) to preview what the
trajectories see before a GPU run, with tiny random tokenizers and decoders in tests and benchmarks,
or as a geometry-only stand-in where GEN3C cannot run. Frames are :mod:`lyra.render` renders (torch
backend on CPU) of the lifted input; what the input does not show stays background (white): the
holes a video model would fill. Latents are the tokenizer's encoding of those frames, normalised
into model space.

``lift`` is the image + depth -> Gaussians function (:func:`lyra.pipeline.lift.lift_image`), handed in
because teachers sit below the pipeline in the import order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lyra.model.checkpoint import module_fingerprint
from lyra.model.tokenizer import encode_video, latent_statistics, normalize_latents
from lyra.progress import Progress, report
from lyra.render.camera import Camera
from lyra.render.render import render
from lyra.scene.gaussians import Gaussians
from lyra.teacher.base import TeacherOutput, TrajectoryOutput

Lift = Callable[..., Gaussians]  # lift(image [H, W, 3] uint8, depth [H, W], intrinsics [4], c2w=[4, 4] | None)


class LiftTeacher:
    """Renders the lifted input along trajectories and encodes the videos with the Cosmos tokenizer."""

    def __init__(self, tokenizer, lift: Lift, tokenizer_folder=None):
        self.tokenizer = tokenizer
        self.lift = lift
        self.statistics = latent_statistics(tokenizer, tokenizer_folder)

    @property
    def identity(self) -> dict:
        """What its outputs depend on (resume keys): the class, the lift function and the tokenizer's weights."""
        return {"class": type(self).__qualname__, "lift": f"{self.lift.__module__}.{self.lift.__qualname__}",
                "tokenizer": module_fingerprint(self.tokenizer)}

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
        lifted = self.lift(image, depth, intrinsics)
        names = list(names or [str(i) for i in range(len(trajectories))])
        outputs = [self._trajectory(name, camera, lambda i: lifted, progress)
                   for camera, name in zip(trajectories, names, strict=True)]
        return TeacherOutput(outputs, depth, intrinsics)

    @torch.inference_mode()
    def generate_video(self, frames: Tensor, trajectories: Sequence[Camera], *, depth: Tensor, intrinsics: Tensor,
                       c2w: Tensor, names: Sequence[str], progress: Progress | None = None) -> TeacherOutput:
        """Frame ``i`` of each trajectory shows input frame ``i`` lifted with its pose ``c2w[i]``."""
        lifted = [self.lift(frames[i], depth[i], intrinsics[i], c2w=c2w[i]) for i in range(frames.shape[0])]
        outputs = [self._trajectory(name, camera, lambda i: lifted[i], progress)
                   for camera, name in zip(trajectories, names, strict=True)]
        return TeacherOutput(outputs)

"""The teacher protocol: what every teacher (GEN3C, the synthetic one) gives the pipeline and the trainer.

A teacher takes one image (with its depth and intrinsics when it has them) and
a list of camera trajectories, and returns, per trajectory:

* ``frames``: the generated video, ``uint8 [F, H, W, 3]`` (RGB);
* ``latents``: the video's Cosmos tokenizer latents in the diffusion *model
  space* (tokenizer-normalised x sigma_data 0.5, the space of the official
  SDG ``latent/*.pkl`` files), ``float32 [16, T, H/8, W/8]`` with
  ``F = 8 (T - 1) + 1``;
* ``camera``: the cameras the frames were generated for (:class:`lyra.render.Camera`
  with ``F`` OpenCV camera-to-world poses and pixel intrinsics);
* ``depth``: optional z-depth ``float32 [F, H, W]`` per frame, 0 where unknown.

Conventions are the project's (DESIGN.md): OpenCV cameras, first input
camera at the identity unless the caller says otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.progress import Progress
from lyra.render.camera import Camera


@dataclasses.dataclass
class TrajectoryOutput:
    """One generated trajectory; shapes in the module docstring. Validated on construction."""

    name: str
    frames: Tensor  # [F, H, W, 3] uint8
    latents: Tensor  # [16, T, H/8, W/8] float32, model space
    camera: Camera  # [F]
    depth: Tensor | None = None  # [F, H, W] float32 z-depth, 0 = unknown

    def __post_init__(self) -> None:
        if self.frames.dim() != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != torch.uint8:
            raise InputDataError(
                f"trajectory {self.name!r}: frames must be uint8 [F, H, W, 3], found "
                f"{self.frames.dtype} {list(self.frames.shape)}"
            )
        num_frames, height, width = self.frames.shape[:3]
        if self.latents.dim() != 4:
            raise InputDataError(f"trajectory {self.name!r}: latents must be [C, T, h, w], found {list(self.latents.shape)}")
        if self.camera.batch_shape != (num_frames,):
            raise InputDataError(
                f"trajectory {self.name!r}: {num_frames} frames but cameras of batch shape {tuple(self.camera.batch_shape)}"
            )
        if (self.camera.width, self.camera.height) != (width, height):
            raise InputDataError(
                f"trajectory {self.name!r}: frames are {width}x{height} but cameras {self.camera.width}x{self.camera.height}"
            )
        if self.depth is not None and tuple(self.depth.shape) != (num_frames, height, width):
            raise InputDataError(
                f"trajectory {self.name!r}: depth must be [F, H, W] = {[num_frames, height, width]}, "
                f"found {list(self.depth.shape)}"
            )

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


@dataclasses.dataclass
class TeacherOutput:
    """Everything a teacher generated from one image: one entry per requested trajectory, in order."""

    trajectories: list[TrajectoryOutput]
    input_depth: Tensor | None = None  # [H, W] float32 z-depth of the input image the teacher used
    input_intrinsics: Tensor | None = None  # [4] (fx, fy, cx, cy) of the input image, pixels
    prompt: str = ""

    def __len__(self) -> int:
        return len(self.trajectories)


@runtime_checkable
class Teacher(Protocol):
    """Anything that turns an image and camera trajectories into a :class:`TeacherOutput`.

    ``image`` is ``uint8 [H, W, 3]`` or float ``[H, W, 3]`` in 0..1; ``depth``
    ``[H, W]`` z-depth and ``intrinsics`` ``[4]`` pixels at the image's size
    (teachers that need them raise :class:`lyra.errors.InputDataError` when
    absent). Each trajectory is a :class:`Camera` batch ``[F]``, whose first camera
    is the input view. ``progress`` follows :mod:`lyra.progress` (raise
    :class:`lyra.progress.Cancelled` from it to stop).
    """

    def generate(
        self,
        image: Tensor,  # [H, W, 3]
        trajectories: Sequence[Camera],
        *,
        depth: Tensor | None = None,  # [H, W]
        intrinsics: Tensor | None = None,  # [4]
        names: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> TeacherOutput: ...


def image_to_unit_float(image: Tensor) -> Tensor:  # [H, W, 3] -> float32 [H, W, 3] in 0..1
    """Accept ``uint8`` 0..255 or float 0..1 RGB images (RGBA is composited over white, as the official reader does)."""
    image = torch.as_tensor(image)
    if image.dim() != 3 or image.shape[-1] not in (3, 4):
        raise InputDataError(f"image must be [H, W, 3] (or RGBA), found {list(image.shape)}")
    out = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
    if out.shape[-1] == 4:
        alpha = out[..., 3:]
        out = out[..., :3] * alpha + (1.0 - alpha)
    if not torch.isfinite(out).all():
        raise InputDataError("image contains NaN or Inf")
    return out.clamp(0.0, 1.0)

"""What a user gives ``lyra generate``: an image, a video, or a ViPE-style folder, read and checked.

* Images: anything imageio reads (PNG, JPEG, WebP, ...), as RGB uint8 ``[H, W, 3]``.
  Larger than :data:`MAX_PIXELS` (16 megapixels) is downscaled, with a notice; larger than
  the decode budget's image limit (:mod:`lyra.limits`, 64 megapixels) is refused from its header.
* Videos (``.mp4 .mov .webm .mkv .avi .m4v``): RGB uint8 frames ``[F, H, W, 3]`` and
  their frame rate; at least 2 frames (one frame is an image, not a 4D input). Frames x
  size is checked against the decode budget from ffmpeg's metadata before decoding.
* ViPE-style folders (what the official dynamic pipeline consumes, the same
  layout as an SDG trajectory without latents): ``rgb/NAME.mp4``,
  ``depth/NAME.zip`` (EXR z-depth per frame), ``pose/NAME.npz`` (``data``
  ``[F, 4, 4]`` OpenCV camera-to-world), ``intrinsics/NAME.npz`` (``data``
  ``[F, 4]`` fx, fy, cx, cy in pixels).

Every problem raises :class:`lyra.errors.InputDataError` naming the path and
what was expected.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError
from lyra.limits import out_of_memory_error
from lyra.pipeline.headers import check_image_header, read_video_frames

MAX_PIXELS = 16_000_000
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")
DEFAULT_FPS = 24.0


@dataclasses.dataclass
class Frames:
    """One image (``F = 1``) or a video, with what is known about its cameras and depth."""

    frames: Tensor  # [F, H, W, 3] uint8 RGB
    fps: float = DEFAULT_FPS
    depth: Tensor | None = None  # [F, H, W] float32 z-depth in metres (ViPE folders)
    c2w: Tensor | None = None  # [F, 4, 4] OpenCV camera-to-world (ViPE folders)
    intrinsics: Tensor | None = None  # [F, 4] (fx, fy, cx, cy) in pixels (ViPE folders)
    notices: list[str] = dataclasses.field(default_factory=list)  # things the user should be told

    @property
    def is_video(self) -> bool:
        return self.frames.shape[0] > 1

    @property
    def size(self) -> tuple[int, int]:  # (height, width)
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def read_input(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Frames:
    """An image, a video or a ViPE-style folder, by what ``path`` is (see the module docstring)."""
    path = Path(path)
    try:
        if path.is_dir():
            return read_vipe_folder(path, max_pixels=max_pixels)
        if not path.is_file():
            raise InputDataError(f"{path}: no such file or folder")
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return read_video(path, max_pixels=max_pixels)
        return read_image(path, max_pixels=max_pixels)
    except MemoryError:
        # Headers are checked against the decode budget first; this guards a process with less memory than that.
        raise out_of_memory_error(path, "an input") from None


def read_image(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Frames:
    """One image as ``Frames`` with ``F = 1`` (alpha dropped, grey expanded to RGB)."""
    import imageio.v3 as iio

    path = Path(path)
    check_image_header(path)  # a 12000 x 12000 PNG is refused before it is decoded
    try:
        image = np.asarray(iio.imread(path))
    except MemoryError:
        raise out_of_memory_error(path, "an image") from None
    except Exception as exc:  # imageio raises many types for a file that is not an image
        raise InputDataError(f"{path}: expected an image (PNG, JPEG, WebP, ...), found a file imageio cannot read") from exc
    if image.ndim == 4 and image.shape[0] > 1:
        raise InputDataError(f"{path}: expected one image, found {image.shape[0]} frames (use a video for 4D)")
    image = image.reshape(image.shape[-3:]) if image.ndim == 4 else image
    frames, notices = _as_rgb_frames(image[None], path, max_pixels)
    return Frames(frames, notices=notices)


def read_video(path: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Frames:
    """All frames of a video (at least 2) and its frame rate; frames x size checked against the decode budget first."""
    path = Path(path)
    frames, fps = read_video_frames(path, "a video")
    if len(frames) < 2:
        raise InputDataError(
            f"{path}: expected a video of at least 2 frames for a 4D scene, found {len(frames)}; "
            "for one frame give an image instead"
        )
    stacked, notices = _as_rgb_frames(frames, path, max_pixels)
    return Frames(stacked, fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS, notices=notices)


def read_vipe_folder(folder: str | os.PathLike, *, max_pixels: int = MAX_PIXELS) -> Frames:
    """A ViPE-style folder: frames, per-frame depth, poses and intrinsics (one NAME in each sub-folder)."""
    from lyra.pipeline.sdg import read_depth_zip, read_npz_rows, read_rgb_video

    folder = Path(folder)
    videos = sorted((folder / "rgb").glob("*.mp4")) if (folder / "rgb").is_dir() else []
    if len(videos) != 1:
        raise InputDataError(
            f"{folder}: expected a ViPE-style folder with one rgb/NAME.mp4 (and depth/, pose/, intrinsics/), "
            f"found {len(videos)} videos in rgb/"
        )
    name = videos[0].stem
    frames = read_rgb_video(videos[0])
    count = frames.shape[0]
    if count < 2:
        raise InputDataError(f"{videos[0]}: expected at least 2 frames for a 4D scene, found {count}")
    c2w = read_npz_rows(folder / "pose" / f"{name}.npz", (4, 4), count)
    intrinsics = read_npz_rows(folder / "intrinsics" / f"{name}.npz", (4,), count)
    depth = read_depth_zip(folder / "depth" / f"{name}.zip")
    if tuple(depth.shape) != tuple(frames.shape[:3]):
        raise InputDataError(
            f"{folder / 'depth' / (name + '.zip')}: expected {count} depth frames of "
            f"{frames.shape[2]}x{frames.shape[1]}, found {depth.shape[0]} of {depth.shape[2]}x{depth.shape[1]}"
        )
    stacked, notices = _as_rgb_frames(frames.numpy(), videos[0], max_pixels)
    if stacked.shape[1:3] != frames.shape[1:3]:  # downscaled: depth and intrinsics follow the image
        factor = stacked.shape[2] / frames.shape[2]
        depth = F.interpolate(depth[:, None], size=tuple(stacked.shape[1:3]), mode="nearest-exact")[:, 0]
        intrinsics = intrinsics * factor
    return Frames(stacked, video_fps(videos[0]), depth.float(), c2w, intrinsics, notices)


def video_fps(path: str | os.PathLike) -> float:
    """A video's frame rate from its header (:data:`DEFAULT_FPS` when it names none)."""
    import imageio_ffmpeg

    reader = None
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        fps = float(next(reader).get("fps") or DEFAULT_FPS)
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError, TypeError):
        fps = DEFAULT_FPS
    finally:
        if reader is not None:
            reader.close()
    return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS


def _as_rgb_frames(frames: np.ndarray, path: Path, max_pixels: int) -> tuple[Tensor, list[str]]:
    """``[F, H, W, C]`` of any channel count / dtype -> uint8 RGB, downscaled to ``max_pixels`` with a notice."""
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 2, 3, 4) or min(frames.shape[1:3]) < 2:
        raise InputDataError(f"{path}: expected an RGB image, found an array of shape {frames.shape[1:]}")
    if frames.shape[-1] in (1, 2):  # grey (+ alpha)
        frames = np.repeat(frames[..., :1], 3, axis=-1)
    frames = frames[..., :3]
    if frames.dtype != np.uint8:
        if frames.dtype.kind == "u":  # 16-bit photos: keep the top 8 bits
            frames = (frames.astype(np.float64) / np.iinfo(frames.dtype).max * 255.0 + 0.5).astype(np.uint8)
        elif frames.dtype.kind == "f":
            frames = (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        else:
            raise InputDataError(f"{path}: expected 8- or 16-bit colour, found {frames.dtype}")
    tensor = torch.from_numpy(np.ascontiguousarray(frames))
    notices = []
    height, width = tensor.shape[1:3]
    if height * width > max_pixels:
        factor = math.sqrt(max_pixels / (height * width))
        new_h, new_w = max(2, int(height * factor)), max(2, int(width * factor))
        resized = F.interpolate(tensor.permute(0, 3, 1, 2).float(), size=(new_h, new_w), mode="area")
        tensor = resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        notices.append(
            f"{path.name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, more than "
            f"{max_pixels / 1e6:.0f}; downscaled to {new_w}x{new_h}"
        )
    return tensor, notices

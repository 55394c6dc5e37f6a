"""Writing renders to disk: MP4 videos (imageio-ffmpeg, H.264) and still images.

Frames are ``[H, W, 3]`` floats in [0, 1] (clamped) or uint8. MP4 uses
yuv420p, which needs even width and height: odd sizes raise
InputDataError (rather than being silently resized). All writes are atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from time import perf_counter

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.fileio import atomic_write
from lyra.progress import Progress, format_duration, report
from lyra.render.camera import Camera
from lyra.render.render import render
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def to_uint8(rgb: Tensor | np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` float in [0, 1] (clamped) or uint8 -> uint8 numpy."""
    if isinstance(rgb, Tensor):
        rgb = rgb.detach().cpu()
        if rgb.dtype != torch.uint8:
            rgb = (rgb.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
        return rgb.numpy()
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb.astype(np.float32), 0, 1) * 255.0 + 0.5).astype(np.uint8)
    return rgb


def write_image(path: str | os.PathLike, rgb: Tensor | np.ndarray) -> Path:
    """Write one ``[H, W, 3]`` image (PNG or JPEG by extension), atomically."""
    import imageio.v3 as iio

    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputDataError(f"{path}: expected an image name ending in {IMAGE_SUFFIXES}, found {path.suffix!r}")
    with atomic_write(path, "wb") as handle:
        handle.write(iio.imwrite("<bytes>", to_uint8(rgb), extension=path.suffix.lower()))
    return path


def write_video(
    path: str | os.PathLike,
    frames: Iterable[Tensor | np.ndarray],  # each [H, W, 3]
    *,
    fps: float = 24.0,
    quality: int = 8,
) -> int:
    """Encode ``frames`` to an H.264 MP4 at ``fps``, atomically; returns the frame count.

    Raises InputDataError for odd sizes, frames of differing sizes, or no frames.
    """
    import imageio_ffmpeg

    path = Path(path)
    count = 0
    # ffmpeg needs a file name, so it encodes into a scratch folder; the result
    # is then copied into place through atomic_write (never a half-written MP4).
    with tempfile.TemporaryDirectory(prefix="lyra-video-") as scratch:
        encoded = os.path.join(scratch, "video.mp4")
        writer = None
        try:
            for frame in frames:
                image = to_uint8(frame)
                height, width = image.shape[:2]
                if writer is None:
                    if width % 2 or height % 2:
                        raise InputDataError(f"MP4 (yuv420p) needs an even width and height, found {width}x{height}")
                    size = (width, height)
                    writer = imageio_ffmpeg.write_frames(
                        encoded, size, fps=fps, codec="libx264", quality=quality,
                        pix_fmt_out="yuv420p", macro_block_size=1,
                    )
                    writer.send(None)
                elif (width, height) != size:
                    raise InputDataError(f"video frames must share one size, found {size} then {(width, height)}")
                writer.send(np.ascontiguousarray(image))
                count += 1
        finally:
            if writer is not None:
                writer.close()
        if count == 0:
            raise InputDataError(f"{path}: no frames to write")
        with open(encoded, "rb") as source, atomic_write(path, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
    return count


def scene_times(scene: GaussianSequence, num_frames: int) -> list[float]:
    """Scene times for ``num_frames`` video frames spanning the whole sequence."""
    start, duration = scene.times[0], scene.duration
    if num_frames == 1:
        return [start]
    return [start + duration * i / (num_frames - 1) for i in range(num_frames)]


def render_frames(
    scene: Gaussians | GaussianSequence,
    cameras: Camera,  # [F]
    *,
    times: Sequence[float] | None = None,
    progress: Progress | None = None,
    **render_options,
) -> Iterable[Tensor]:
    """Yield ``rgb [H, W, 3]`` for each camera; a sequence is shown at ``times``
    (default: spanning the sequence over the frames). ``render_options`` go to :func:`render`.
    ``progress`` is told after each frame, with the mean seconds per frame and the time left (and
    may raise :class:`lyra.progress.Cancelled`)."""
    cameras = cameras.flatten()
    count = cameras.batch_shape[0]
    if isinstance(scene, GaussianSequence):
        times = scene_times(scene, count) if times is None else list(times)
        if len(times) != count:
            raise InputDataError(f"{len(times)} times for {count} cameras")
    start = perf_counter()
    for i in range(count):
        frame = scene.frame_at_time(times[i]) if isinstance(scene, GaussianSequence) else scene
        with torch.no_grad():
            rgb = render(frame, cameras[i], **render_options).rgb
        per_frame = (perf_counter() - start) / (i + 1)
        left = f", about {format_duration(per_frame * (count - i - 1))} left" if i + 1 < count else ""
        report(progress, (i + 1) / count, f"frame {i + 1}/{count}, {per_frame:.1f} s/frame{left}")
        yield rgb


def render_video(
    scene: Gaussians | GaussianSequence,
    cameras: Camera,  # [F]
    path: str | os.PathLike,
    *,
    fps: float = 24.0,
    times: Sequence[float] | None = None,
    progress: Progress | None = None,
    **render_options,
) -> int:
    """Render ``scene`` along ``cameras`` into the MP4 ``path``; returns the frame count.

    ``progress`` is told after each frame; a :class:`lyra.progress.Cancelled` it raises
    stops the render and leaves no file behind (the write is atomic)."""
    if cameras.width % 2 or cameras.height % 2:
        raise InputDataError(f"MP4 (yuv420p) needs an even width and height, found {cameras.width}x{cameras.height}")
    frames = render_frames(scene, cameras, times=times, progress=progress, **render_options)
    return write_video(path, frames, fps=fps)

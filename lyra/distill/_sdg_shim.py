"""Stand-in for the SDG writer/readers of ``lyra.pipeline.sdg`` (issue 8) until it lands on main.

Same names and signatures (``write_trajectory``, ``read_rgb_video``, ``read_depth_zip``) so the
switch is an import change; this file is deleted then.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.fileio import atomic_write

DEPTH_CHANNEL = "Z"


def read_rgb_video(path: str | os.PathLike) -> Tensor:  # -> [F, H, W, 3] uint8
    import imageio_ffmpeg

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: video file not found")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    width, height = next(reader)["size"]
    frames = [np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in reader]
    if not frames:
        raise InputDataError(f"{path}: the video has no frames")
    return torch.from_numpy(np.stack(frames))


def read_depth_zip(path: str | os.PathLike) -> Tensor:  # -> [F, H, W] float32
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: depth file not found")
    frames = []
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="lyra-depth-") as scratch:
        for member in sorted(n for n in archive.namelist() if n.lower().endswith(".exr")):
            local = Path(scratch) / "frame.exr"
            local.write_bytes(archive.read(member))
            with OpenEXR.File(str(local)) as exr:
                frames.append(np.asarray(exr.channels()[DEPTH_CHANNEL].pixels, dtype=np.float32))
    if not frames:
        raise InputDataError(f"{path}: expected EXR depth frames in the zip, found none")
    return torch.from_numpy(np.stack(frames))


def _save_npz(path: Path, data: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, data=data, inds=np.arange(len(data), dtype=np.int64))
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def write_depth_zip(path: str | os.PathLike, depth: Tensor) -> Path:  # [F, H, W]
    import OpenEXR

    path = Path(path)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    values = np.asarray(torch.as_tensor(depth).cpu(), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="lyra-depth-") as scratch, atomic_write(path, "wb") as handle:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, frame in enumerate(values):
                local = os.path.join(scratch, "frame.exr")
                with OpenEXR.File(header, {DEPTH_CHANNEL: np.ascontiguousarray(frame.astype(np.float16))}) as exr:
                    exr.write(local)
                archive.write(local, f"{index:05d}.exr")
    return path


def write_trajectory(folder, *, latents, c2w, intrinsics, frames=None, depth=None, name="scene", fps=24.0) -> Path:
    from lyra.render.video import write_video

    folder = Path(folder)
    latents = torch.as_tensor(latents).detach().float().cpu()
    if latents.dim() == 4:
        latents = latents[None]
    with atomic_write(folder / "latent" / f"{name}.pkl", "wb") as handle:
        torch.save(latents.contiguous(), handle)
    _save_npz(folder / "pose" / f"{name}.npz", np.asarray(torch.as_tensor(c2w).cpu(), dtype=np.float32))
    _save_npz(folder / "intrinsics" / f"{name}.npz", np.asarray(torch.as_tensor(intrinsics).cpu(), dtype=np.float32))
    if frames is not None:
        write_video(folder / "rgb" / f"{name}.mp4", list(frames), fps=fps)
    if depth is not None:
        write_depth_zip(folder / "depth" / f"{name}.zip", depth)
    return folder

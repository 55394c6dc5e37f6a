"""The official SDG folder layout (one folder per camera trajectory): read and write, in one module.

Layout of a trajectory folder (official ``diffusion_output/<view>/``; LYRA_FACTS.md "Data on disk")::

    FOLDER/rgb/NAME.mp4          F frames, H x W, H.264 at 24 fps (uint8 RGB)
    FOLDER/latent/NAME.pkl       torch-saved float32 [1, 16, T, h, w], model-space (normalised) latents
    FOLDER/pose/NAME.npz         data [F, 4, 4] OpenCV camera-to-world (float32), inds [F] (int64 frame indices)
    FOLDER/intrinsics/NAME.npz   data [F, 4] (fx, fy, cx, cy) in pixels (float32), inds [F]
    FOLDER/depth/NAME.zip        one EXR per frame (``00000.exr`` ...), channel ``Z``, float16 z-depth [H, W]

with ``F = 8 (T - 1) + 1`` (121 frames for 16 latent frames) and ``H, W = 8h, 8w``
(704 x 1280 for 88 x 160 latents). A scene is a folder of trajectory folders
(official order of the six: 5, 0, 1, 2, 3, 4).

Writing (for teachers)::

    write_trajectory(folder, latents=lat, c2w=c2w, intrinsics=K, frames=rgb, depth=z, name="scene")

takes ``latents [16, T, h, w]`` or ``[1, 16, T, h, w]``, ``c2w [F, 4, 4]``,
``intrinsics [F, 4]`` or ``[F, 3, 3]`` (K matrices), ``frames [F, H, W, 3]`` uint8
(or floats in 0..1) and ``depth [F, H, W]``; ``frames`` and ``depth`` are optional.
Each file is written atomically. Reading: :func:`read_trajectory` (validated
:class:`Trajectory`, optionally with its RGB frames and depth), :func:`read_scene`
(several trajectories that agree in shape), and the single-file readers
:func:`load_latent_file`, :func:`read_rgb_video`, :func:`read_depth_zip`.
Every problem raises :class:`lyra.errors.InputDataError` naming the file.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lyra.bounded_zip import BoundedZip, check_zip_members, shown_name
from lyra.errors import InputDataError
from lyra.fileio import atomic_write
from lyra.limits import check_decoded
from lyra.model.tokenizer import SPATIAL_COMPRESSION, TEMPORAL_COMPRESSION, video_frames
from lyra.pipeline.headers import exr_header_size, read_video_frames
from lyra.render.camera import Camera
from lyra.render.trajectories import LYRA_DEMO_ORDER

OFFICIAL_VIEW_ORDER = LYRA_DEMO_ORDER  # the trajectory folders in the order the official decoder reads them
FPS = 24.0
DEPTH_CHANNEL = "Z"
_MAX_DEPTH_MEMBER_BYTES = 256 << 20
_MAX_NPZ_MEMBER_BYTES = 64 << 20  # poses and intrinsics: 64 bytes a frame  # one float16 EXR frame of 704x1280 is < 2 MB; far larger is not a depth map


@dataclasses.dataclass
class Trajectory:
    """One camera trajectory of an SDG scene, in memory."""

    folder: Path
    name: str
    latents: Tensor  # [C, T, h, w] model-space SDG latents
    c2w: Tensor  # [F, 4, 4] OpenCV camera-to-world, frames 0..F-1
    intrinsics: Tensor  # [F, 4] (fx, fy, cx, cy) in pixels of the 8h x 8w images
    frames: Tensor | None = None  # [F, H, W, 3] uint8 RGB (when read with rgb=True)
    depth: Tensor | None = None  # [F, H, W] float32 z-depth (when read with depth=True)

    @property
    def num_frames(self) -> int:
        return self.c2w.shape[0]

    @property
    def cameras(self) -> Camera:  # [F]
        """The trajectory's cameras at the full image resolution ``8h x 8w``."""
        height, width = self.latents.shape[-2:]
        return Camera(self.c2w, self.intrinsics, SPATIAL_COMPRESSION * width, SPATIAL_COMPRESSION * height)


# ----------------------------------------------------------------------------- reading
def _numpy_safe_globals() -> list:
    """The few numpy globals a pickled ndarray needs (nothing else is allowed)."""
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    allowed: list = [reconstruct, (reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype]
    allowed += [getattr(np.dtypes, name) for name in ("Float32DType", "Float64DType", "Float16DType")]
    return allowed


def load_latent_file(path: str | os.PathLike) -> Tensor:
    """One trajectory's stored latents ``[1, C, T, h, w]`` -> float32 ``[C, T, h, w]``.

    Loaded with ``weights_only=True``; a numpy array (as the official code saves) is
    accepted through an allowlist of numpy's array-reconstruction globals only.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: latent file not found")
    check_zip_members(path, "a torch-saved latent file")  # torch's reader would inflate a bomb member whole
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputDataError(
            f"{path}: expected a torch-saved latent array, found an unreadable file ({first_line})"
        ) from exc
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if not isinstance(data, Tensor):
        raise InputDataError(f"{path}: expected a latent tensor or array, found {type(data).__name__}")
    if data.dim() == 5 and data.shape[0] == 1:
        data = data[0]
    if data.dim() != 4:
        raise InputDataError(f"{path}: expected latents [1, C, T, H, W], found shape {list(data.shape)}")
    if not torch.isfinite(data).all():
        raise InputDataError(f"{path}: latents contain NaN or Inf")
    return data.float()


def read_npz_rows(path: Path, row_shape: tuple[int, ...], num_frames: int) -> Tensor:
    """Rows for frames 0..num_frames-1 of an npz ``data`` array (ordered by ``inds`` when present)."""
    if not path.is_file():
        raise InputDataError(f"{path}: file not found")
    try:
        # An npz is a zip: its members are read bounded (any method, declared sizes checked), then parsed.
        with BoundedZip(path, "an npz archive") as archive:
            names = {info.filename: info for info in archive.infolist()}
            if "data.npy" not in names:
                raise InputDataError(f"{path}: expected an npz with a 'data' array, found {len(names)} other members")
            data = np.load(io.BytesIO(archive.read(names["data.npy"], _MAX_NPZ_MEMBER_BYTES)), allow_pickle=False)
            data = np.asarray(data, dtype=np.float64)
            inds = (np.asarray(np.load(io.BytesIO(archive.read(names["inds.npy"], _MAX_NPZ_MEMBER_BYTES)), allow_pickle=False))
                    if "inds.npy" in names else np.arange(len(data)))
    except (OSError, ValueError, EOFError) as exc:
        raise InputDataError(f"{path}: expected an npz archive, found an unreadable file ({type(exc).__name__})") from None
    if data.ndim != 1 + len(row_shape) or tuple(data.shape[1:]) != row_shape:
        raise InputDataError(f"{path}: expected data [F, {', '.join(map(str, row_shape))}], found {list(data.shape)}")
    if inds.shape != (len(data),):
        raise InputDataError(f"{path}: expected inds [{len(data)}], found {list(inds.shape)}")
    order = np.argsort(inds, kind="stable")
    sorted_inds = inds[order]
    wanted = np.arange(num_frames)
    pos = np.searchsorted(sorted_inds, wanted).clip(max=max(len(sorted_inds) - 1, 0))
    if len(sorted_inds) == 0 or not np.array_equal(sorted_inds[pos], wanted):
        raise InputDataError(
            f"{path}: expected frames 0..{num_frames - 1} (to match the latents), found {len(data)} frames "
            f"with indices {sorted_inds[:3].tolist()}...{sorted_inds[-3:].tolist()}"
        )
    rows = data[order][pos]
    if not np.isfinite(rows).all():
        raise InputDataError(f"{path}: contains NaN or Inf")
    return torch.from_numpy(rows).float()


def read_rgb_video(path: str | os.PathLike) -> Tensor:  # -> [F, H, W, 3] uint8
    """All frames of an ``rgb/NAME.mp4`` as uint8 RGB (frames x size checked against the decode budget first)."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: video file not found")
    frames, _fps = read_video_frames(path, "an MP4 video")
    if not len(frames):
        raise InputDataError(f"{path}: the video has no frames")
    return torch.from_numpy(frames)


def read_depth_zip(path: str | os.PathLike) -> Tensor:  # -> [F, H, W] float32
    """The per-frame EXR depth maps (channel ``Z``) of a ``depth/NAME.zip``, in member-name order.

    Members are read bounded (:class:`lyra.bounded_zip.BoundedZip`: any method, declared sizes and
    ratios checked), and each EXR's header and all frames together are checked against the decode budget.
    """
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: depth file not found")
    frames = []
    total = 0
    with BoundedZip(path, "a zip of EXR depth frames") as archive, tempfile.TemporaryDirectory(prefix="lyra-depth-") as scratch:
        members = [i for i in archive.infolist() if i.filename.lower().endswith(".exr") and not i.is_dir()]
        if not members:
            raise InputDataError(f"{path}: expected EXR depth frames in the zip, found none")
        for info in sorted(members, key=lambda i: i.filename):
            local = Path(scratch) / "frame.exr"
            with open(local, "wb") as target:
                archive.copy(info, target, _MAX_DEPTH_MEMBER_BYTES)
            width, height, _channels = exr_header_size(local)
            total += 4 * width * height
            check_decoded(path, total, f"{len(frames) + 1} depth frames of {width}x{height}")
            try:
                with OpenEXR.File(str(local)) as exr:
                    channels = exr.channels()
                    if DEPTH_CHANNEL not in channels:
                        raise InputDataError(
                            f"{path}: {shown_name(info.filename)} has channels {sorted(channels)[:8]}, "
                            f"expected {DEPTH_CHANNEL!r}"
                        )
                    frames.append(np.asarray(channels[DEPTH_CHANNEL].pixels, dtype=np.float32))
            except (OSError, RuntimeError) as exc:
                raise InputDataError(f"{path}: {shown_name(info.filename)} is not a readable EXR ({exc})") from exc
    if len({f.shape for f in frames}) != 1:
        raise InputDataError(f"{path}: depth frames differ in size")
    return torch.from_numpy(np.stack(frames))


def _latent_name(folder: Path, name: str | None) -> str:
    latent_dir = folder / "latent"
    if not latent_dir.is_dir():
        raise InputDataError(
            f"{folder}: expected a trajectory folder with latent/, pose/ and intrinsics/, found no latent/"
        )
    if name is not None:
        return name
    names = sorted(p.stem for p in latent_dir.glob("*.pkl"))
    if len(names) != 1:
        found = f"{len(names)} ({', '.join(names[:5])})" if names else "none"
        raise InputDataError(f"{latent_dir}: expected exactly one NAME.pkl (or pass a name), found {found}")
    return names[0]


def read_trajectory(
    folder: str | os.PathLike, name: str | None = None, *, rgb: bool = False, depth: bool = False
) -> Trajectory:
    """Read and validate one trajectory folder (``rgb`` / ``depth``: also read those, which must then exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(f"{folder}: trajectory folder not found")
    name = _latent_name(folder, name)
    latents = load_latent_file(folder / "latent" / f"{name}.pkl")
    if latents.shape[0] != 16:
        raise InputDataError(f"{folder}: expected 16-channel Cosmos latents, found {latents.shape[0]} channels")
    num_frames = TEMPORAL_COMPRESSION * (latents.shape[1] - 1) + 1
    c2w = read_npz_rows(folder / "pose" / f"{name}.npz", (4, 4), num_frames)
    intrinsics = read_npz_rows(folder / "intrinsics" / f"{name}.npz", (4,), num_frames)
    if (intrinsics[:, :2] <= 0).any():
        raise InputDataError(f"{folder / 'intrinsics' / (name + '.npz')}: focal lengths must be positive")
    trajectory = Trajectory(folder, name, latents, c2w, intrinsics)
    size = tuple(SPATIAL_COMPRESSION * s for s in latents.shape[-2:])
    if rgb:
        trajectory.frames = read_rgb_video(folder / "rgb" / f"{name}.mp4")
        _check_frames(folder / "rgb" / f"{name}.mp4", trajectory.frames.shape[:3], num_frames, size)
    if depth:
        trajectory.depth = read_depth_zip(folder / "depth" / f"{name}.zip")
        _check_frames(folder / "depth" / f"{name}.zip", trajectory.depth.shape, num_frames, size)
    return trajectory


def _check_frames(path: Path, shape: Sequence[int], num_frames: int, size: tuple[int, int]) -> None:
    if tuple(shape) != (num_frames, *size):
        raise InputDataError(
            f"{path}: expected {num_frames} frames of {size[1]}x{size[0]} (to match the latents), "
            f"found {shape[0]} of {shape[2]}x{shape[1]}"
        )


def read_scene(
    scene_dir: str | os.PathLike, views: Sequence[int | str] = OFFICIAL_VIEW_ORDER, name: str | None = None, **read
) -> list[Trajectory]:
    """The trajectories ``views`` (folder names under ``scene_dir``), in that order; ``read`` as :func:`read_trajectory`."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise InputDataError(f"{scene_dir}: scene folder not found")
    if not views:
        raise InputDataError("at least one view is needed")
    trajectories = [read_trajectory(scene_dir / str(v), name, **read) for v in views]
    first = trajectories[0]
    for traj in trajectories[1:]:
        if traj.latents.shape != first.latents.shape:
            raise InputDataError(
                f"{traj.folder}: latents {list(traj.latents.shape)} differ from {first.folder}'s {list(first.latents.shape)}"
            )
    if first.latents.shape[2] % 2 or first.latents.shape[3] % 2:
        raise InputDataError(
            f"{first.folder}: latent height and width must be even, found {list(first.latents.shape[2:])}"
        )
    return trajectories


# ----------------------------------------------------------------------------- writing
def _intrinsics_rows(intrinsics: Tensor | np.ndarray) -> np.ndarray:  # [F, 4] or [F, 3, 3] -> [F, 4]
    values = np.asarray(torch.as_tensor(intrinsics).detach().cpu(), dtype=np.float32)
    if values.ndim == 3 and values.shape[1:] == (3, 3):
        values = np.stack([values[:, 0, 0], values[:, 1, 1], values[:, 0, 2], values[:, 1, 2]], axis=-1)
    if values.ndim != 2 or values.shape[1] != 4:
        raise InputDataError(f"intrinsics must be [F, 4] (fx, fy, cx, cy) or [F, 3, 3], found {list(values.shape)}")
    return values


# Zip members carry this fixed date, so equal data gives equal bytes (np.savez and ZipFile.write stamp the
# current time): SDG folders made by one rank or by several are byte-identical.
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _zip_member(name: str) -> zipfile.ZipInfo:
    member = zipfile.ZipInfo(name, ZIP_DATE)
    member.external_attr = 0o644 << 16
    return member


def _save_npz(path: Path, data: np.ndarray) -> None:
    """``data`` and ``inds`` as an ``.npz`` (what np.savez writes, with fixed member dates)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in (("data", data), ("inds", np.arange(len(data), dtype=np.int64))):
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            archive.writestr(_zip_member(f"{name}.npy"), member.getvalue())
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def write_depth_zip(path: str | os.PathLike, depth: Tensor | np.ndarray) -> Path:  # depth [F, H, W]
    """One float16 EXR per frame (channel ``Z``, ZIP-compressed) in a zip, written atomically."""
    import OpenEXR

    path = Path(path)
    values = np.asarray(torch.as_tensor(depth).detach().cpu(), dtype=np.float32)
    if values.ndim != 3:
        raise InputDataError(f"depth must be [F, H, W], found {list(values.shape)}")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with tempfile.TemporaryDirectory(prefix="lyra-depth-") as scratch, atomic_write(path, "wb") as handle:
        # EXR data is compressed already, so the zip only stores it.
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            for index, frame in enumerate(values):
                local = os.path.join(scratch, "frame.exr")
                with OpenEXR.File(header, {DEPTH_CHANNEL: np.ascontiguousarray(frame.astype(np.float16))}) as exr:
                    exr.write(local)
                with open(local, "rb") as exr_file:
                    archive.writestr(_zip_member(f"{index:05d}.exr"), exr_file.read())
    return path


def write_trajectory(
    folder: str | os.PathLike,
    *,
    latents: Tensor,  # [16, T, h, w] or [1, 16, T, h, w] model-space latents
    c2w: Tensor | np.ndarray,  # [F, 4, 4] OpenCV camera-to-world, F = 8 (T - 1) + 1
    intrinsics: Tensor | np.ndarray,  # [F, 4] (fx, fy, cx, cy) px, or [F, 3, 3] K
    frames: Tensor | np.ndarray | None = None,  # [F, 8h, 8w, 3] uint8 (or floats in 0..1)
    depth: Tensor | np.ndarray | None = None,  # [F, 8h, 8w] z-depth
    name: str = "scene",
    fps: float = FPS,
) -> Path:
    """Write one trajectory folder in the official layout (see the module docstring); returns ``folder``.

    Raises InputDataError when the shapes disagree (nothing is written then).
    """
    from lyra.render.video import write_video

    folder = Path(folder)
    latents = torch.as_tensor(latents).detach().float().cpu()
    if latents.dim() == 4:
        latents = latents[None]
    if latents.dim() != 5 or latents.shape[:2] != (1, 16):
        raise InputDataError(f"latents must be [16, T, h, w] or [1, 16, T, h, w], found {list(latents.shape)}")
    num_frames = video_frames(latents.shape[2])
    size = tuple(SPATIAL_COMPRESSION * s for s in latents.shape[-2:])
    poses = np.asarray(torch.as_tensor(c2w).detach().cpu(), dtype=np.float32)
    rows = _intrinsics_rows(intrinsics)
    if poses.shape != (num_frames, 4, 4) or len(rows) != num_frames:
        raise InputDataError(
            f"{num_frames} frames need c2w [{num_frames}, 4, 4] and intrinsics [{num_frames}, 4], "
            f"found {list(poses.shape)} and {list(rows.shape)}"
        )
    if frames is not None and tuple(frames.shape) != (num_frames, *size, 3):
        raise InputDataError(f"frames must be [{num_frames}, {size[0]}, {size[1]}, 3], found {list(frames.shape)}")
    if depth is not None and tuple(depth.shape) != (num_frames, *size):
        raise InputDataError(f"depth must be [{num_frames}, {size[0]}, {size[1]}], found {list(depth.shape)}")
    with atomic_write(folder / "latent" / f"{name}.pkl", "wb") as handle:
        torch.save(latents.contiguous(), handle)
    _save_npz(folder / "pose" / f"{name}.npz", poses)
    _save_npz(folder / "intrinsics" / f"{name}.npz", rows)
    if frames is not None:
        write_video(folder / "rgb" / f"{name}.mp4", list(frames), fps=fps)
    if depth is not None:
        write_depth_zip(folder / "depth" / f"{name}.zip", depth)
    return folder

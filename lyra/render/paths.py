"""Keyframed camera paths: smooth interpolation and a JSON file format.

A :class:`CameraPath` is a list of :class:`Keyframe` (position, orientation given
as a look-at point or a (w, x, y, z) camera-to-world quaternion, vertical fov,
optional scene time for 4D). Sampling spaces keyframes evenly in a parameter
``u in [0, K-1]`` (``[0, K]`` when looping) and interpolates positions with
uniform Catmull-Rom splines (which pass through every keyframe; the end
segments use mirrored phantom points), rotations with slerp (shortest arc),
and fov and time linearly.

JSON (``version`` 1)::

    {"version": 1, "loop": false,
     "keyframes": [{"position": [x, y, z], "look_at": [x, y, z],   # or "wxyz": [w, x, y, z]
                    "fov_deg": 60.0, "time": 0.0}, ...]}              # time optional

Reading a bad file raises :class:`lyra.errors.CameraPathError` naming the
file and what was wrong. Writes are atomic.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lyra.errors import CameraPathError
from lyra.fileio import atomic_write
from lyra.render.camera import DEFAULT_UP, Camera, look_at_c2w
from lyra.scene.gaussians import quats_to_rotmats, rotmats_to_quats

PATH_FORMAT_VERSION = 1


@dataclasses.dataclass
class Keyframe:
    """One camera keyframe (world space, OpenCV camera axes)."""

    position: tuple[float, float, float]
    look_at: tuple[float, float, float] | None = None
    wxyz: tuple[float, float, float, float] | None = None  # camera-to-world rotation
    fov_deg: float = 60.0  # vertical
    time: float | None = None  # scene time for 4D scenes

    def rotation(self, up: Sequence[float] = DEFAULT_UP) -> Tensor:  # [3, 3] float64
        if self.wxyz is not None:
            return quats_to_rotmats(torch.tensor(self.wxyz, dtype=torch.float64))
        if self.look_at is None:
            raise CameraPathError("a keyframe needs either look_at or wxyz")
        return look_at_c2w(
            torch.tensor(self.position, dtype=torch.float64), torch.tensor(self.look_at, dtype=torch.float64), up
        )[:3, :3]

    @classmethod
    def from_camera(cls, camera: Camera, time: float | None = None) -> Keyframe:
        """Keyframe of a single camera (its quaternion; fov from fy and height)."""
        view = camera.to_viser()
        return cls(
            tuple(float(v) for v in view["position"]),
            wxyz=tuple(float(v) for v in view["wxyz"]),
            fov_deg=math.degrees(view["fov"]),
            time=time,
        )


@dataclasses.dataclass
class CameraPath:
    keyframes: list[Keyframe]
    loop: bool = False
    up: tuple[float, float, float] = DEFAULT_UP  # used to orient look_at keyframes

    def __post_init__(self) -> None:
        if not self.keyframes:
            raise CameraPathError("a camera path needs at least one keyframe")
        timed = [k.time is not None for k in self.keyframes]
        if any(timed) and not all(timed):
            raise CameraPathError("either every keyframe has a time or none does")

    @property
    def has_time(self) -> bool:
        return self.keyframes[0].time is not None

    def sample(self, num_frames: int, width: int, height: int) -> tuple[Camera, Tensor | None]:
        """Cameras ``[num_frames]`` along the path and their times ``[num_frames]`` (None without times).

        Frame 0 is the first keyframe; the last frame is the last keyframe
        (or, when looping, the frame before returning to the first).
        """
        if num_frames < 1:
            raise CameraPathError(f"num_frames must be >= 1, found {num_frames}")
        count = len(self.keyframes)
        span = count if self.loop else count - 1
        if self.loop:
            u = torch.arange(num_frames, dtype=torch.float64) * span / num_frames
        else:
            u = torch.linspace(0.0, span, num_frames, dtype=torch.float64) if num_frames > 1 else torch.zeros(1)
        u = u.double()
        positions = torch.tensor([k.position for k in self.keyframes], dtype=torch.float64)  # [K, 3]
        quats = rotmats_to_quats(torch.stack([k.rotation(self.up) for k in self.keyframes]))  # [K, 4]
        fovs = torch.tensor([k.fov_deg for k in self.keyframes], dtype=torch.float64)

        seg = torch.clamp(u.floor().long(), 0, max(span - 1, 0))
        frac = (u - seg).unsqueeze(-1)  # [F, 1]
        i0, i1 = seg, seg + 1
        if self.loop:
            i1 = i1 % count
        else:
            i1 = torch.clamp(i1, max=count - 1)
        c2w = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
        c2w[:, :3, 3] = _catmull_rom(positions, seg, frac, self.loop)
        c2w[:, :3, :3] = quats_to_rotmats(_slerp(quats[i0], quats[i1], frac))
        fov = torch.lerp(fovs[i0], fovs[i1], frac[:, 0])
        focal = 0.5 * height / torch.tan(0.5 * torch.deg2rad(fov))
        k = torch.stack([focal, focal, torch.full_like(focal, width / 2), torch.full_like(focal, height / 2)], -1)
        times = None
        if self.has_time:
            t = torch.tensor([kf.time for kf in self.keyframes], dtype=torch.float64)
            times = torch.lerp(t[i0], t[i1], frac[:, 0])
        return Camera(c2w.float(), k.float(), width, height), times

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        frames = []
        for k in self.keyframes:
            entry: dict[str, Any] = {"position": list(k.position), "fov_deg": k.fov_deg}
            if k.wxyz is not None:
                entry["wxyz"] = list(k.wxyz)
            if k.look_at is not None:
                entry["look_at"] = list(k.look_at)
            if k.time is not None:
                entry["time"] = k.time
            frames.append(entry)
        return {"version": PATH_FORMAT_VERSION, "loop": self.loop, "up": list(self.up), "keyframes": frames}

    @classmethod
    def from_dict(cls, data: Any, source: str = "camera path") -> CameraPath:
        if not isinstance(data, dict) or not isinstance(data.get("keyframes"), list):
            raise CameraPathError(f"{source}: expected an object with a 'keyframes' list, found {type(data).__name__}")
        if data.get("version", PATH_FORMAT_VERSION) != PATH_FORMAT_VERSION:
            raise CameraPathError(f"{source}: expected version {PATH_FORMAT_VERSION}, found {data.get('version')!r}")
        keyframes = [_keyframe_from_dict(entry, f"{source}: keyframe {i}") for i, entry in enumerate(data["keyframes"])]
        up = _floats(data.get("up", DEFAULT_UP), 3, f"{source}: 'up'")
        return cls(keyframes, loop=bool(data.get("loop", False)), up=up)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the path as JSON, atomically."""
        path = Path(path)
        with atomic_write(path, "w") as handle:
            json.dump(self.to_dict(), handle, indent=2)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CameraPath:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CameraPathError(f"{path}: cannot read camera path ({exc})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CameraPathError(f"{path}: expected camera-path JSON, found invalid JSON ({exc})") from exc
        return cls.from_dict(data, str(path))


def _keyframe_from_dict(entry: Any, where: str) -> Keyframe:
    if not isinstance(entry, dict) or "position" not in entry:
        raise CameraPathError(f"{where}: expected an object with 'position', found {entry!r:.80}")
    if "look_at" not in entry and "wxyz" not in entry:
        raise CameraPathError(f"{where}: expected 'look_at' or 'wxyz'")
    position = _floats(entry["position"], 3, f"{where} 'position'")
    look_at = _floats(entry["look_at"], 3, f"{where} 'look_at'") if "look_at" in entry else None
    wxyz = _floats(entry["wxyz"], 4, f"{where} 'wxyz'") if "wxyz" in entry else None
    if wxyz is not None and math.fsum(v * v for v in wxyz) < 1e-12:
        raise CameraPathError(f"{where}: 'wxyz' is a zero quaternion")
    if look_at is not None and wxyz is None and look_at == position:
        raise CameraPathError(f"{where}: 'look_at' equals 'position'")
    fov = _floats([entry.get("fov_deg", 60.0)], 1, f"{where} 'fov_deg'")[0]
    if not 0 < fov < 180:
        raise CameraPathError(f"{where}: expected 0 < fov_deg < 180, found {fov}")
    time = _floats([entry["time"]], 1, f"{where} 'time'")[0] if entry.get("time") is not None else None
    return Keyframe(position, look_at, wxyz, fov, time)


def _floats(value: Any, count: int, where: str) -> tuple:
    ok = isinstance(value, (list, tuple)) and len(value) == count
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok:
        raise CameraPathError(f"{where}: expected {count} finite numbers, found {value!r:.80}")
    return tuple(float(v) for v in value)


def _catmull_rom(points: Tensor, seg: Tensor, frac: Tensor, loop: bool) -> Tensor:
    """Uniform Catmull-Rom through ``points [K, 3]`` at segments ``seg [F]``, fractions ``frac [F, 1]``."""
    count = points.shape[0]
    if count == 1:
        return points.expand(seg.shape[0], 3).clone()
    if loop:
        ext = torch.cat([points[-1:], points, points[:2]])
    else:  # mirrored phantom end points keep the end tangents natural
        ext = torch.cat([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    p0, p1, p2, p3 = ext[seg], ext[seg + 1], ext[seg + 2], ext[seg + 3]
    t, t2, t3 = frac, frac * frac, frac * frac * frac
    return 0.5 * (
        2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 + (3 * p1 - p0 - 3 * p2 + p3) * t3
    )


def _slerp(q0: Tensor, q1: Tensor, frac: Tensor) -> Tensor:
    """Shortest-arc spherical interpolation of unit quaternions ``[F, 4]``."""
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    small = sin_theta < 1e-6
    w0 = torch.where(small, 1 - frac, torch.sin((1 - frac) * theta) / torch.where(small, 1.0, sin_theta))
    w1 = torch.where(small, frac, torch.sin(frac * theta) / torch.where(small, 1.0, sin_theta))
    return torch.nn.functional.normalize(w0 * q0 + w1 * q1, dim=-1)

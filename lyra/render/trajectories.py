"""Camera trajectories: the Lyra presets and an orbit around a target.

Lyra presets (LYRA_FACTS.md, "Trajectories"): the camera starts at the origin
of the first camera's OpenCV frame and looks at ``(0, 0, center_depth)``.
With ``n`` frames, ``i = 0..n-1`` and movement distance ``d``:

* ``left`` / ``right``: x = -/+ i * d * center_depth / n   (x is image right)
* ``up`` / ``down``:    y = -/+ i * d * center_depth / n   (y is image down)
* ``zoom_in`` / ``zoom_out``: z = +/- i * d * center_depth / n
* ``clockwise``: x = rx (cos th - 1), y = ry sin th, th = linspace(0, 4 pi, n),
  rx = 0.15 d, ry = 0.10 d (times ``center_depth``, which is 1 in Lyra's single-image
  case, so scenes of another scale get the same relative motion); seen by the
  camera, the path turns clockwise on screen (y points down);
* ``counterclockwise``: the same with y negated;
* ``none``: the camera stays put.

``d`` is drawn uniformly from the preset's range (``rng``) or, by default, the
range's midpoint, then multiplied by ``distance_factor`` (Lyra's "more motion"
factor; 1 by default, 2 for more). Rotation modes: ``center_facing`` (look at
``(0, 0, center_depth)``, the default), ``none`` (keep the first camera's
orientation), ``trajectory_aligned`` (look along the direction of motion).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.render.camera import DEFAULT_UP, Camera, look_at_c2w

# name -> (axis or "spiral" / None, sign, (distance range))
LYRA_PRESETS: dict[str, tuple[str | None, float, tuple[float, float]]] = {
    "left": ("x", -1.0, (0.2, 0.3)),
    "right": ("x", 1.0, (0.2, 0.3)),
    "up": ("y", -1.0, (0.1, 0.2)),
    "down": ("y", 1.0, (0.1, 0.2)),
    "zoom_in": ("z", 1.0, (0.3, 0.4)),
    "zoom_out": ("z", -1.0, (0.3, 0.4)),
    "clockwise": ("spiral", 1.0, (0.4, 0.6)),
    "counterclockwise": ("spiral", -1.0, (0.4, 0.6)),
    "none": (None, 0.0, (0.0, 0.0)),
}
# Lyra's six generation trajectories by index, and the order its demos show them.
LYRA_TRAJECTORY_INDEX = ("left", "right", "up", "zoom_out", "zoom_in", "clockwise")
LYRA_DEMO_ORDER = (5, 0, 1, 2, 3, 4)
# The one trajectory folder order: SDG folder name of each trajectory a run can ask for. Lyra's six
# keep their official indices, the two extra presets follow, a keyframed camera path is "custom".
TRAJECTORY_FOLDERS = {name: str(i) for i, name in enumerate((*LYRA_TRAJECTORY_INDEX, "down", "counterclockwise"))}
CUSTOM_TRAJECTORY = "custom"
TRAJECTORY_FOLDERS[CUSTOM_TRAJECTORY] = CUSTOM_TRAJECTORY


def decode_order(folders) -> list[str]:
    """Trajectory folders in the order Lyra's decoder reads them: its demo order (5, 0, 1, 2, 3, 4) first."""
    folders = [str(f) for f in folders]
    official = [str(i) for i in LYRA_DEMO_ORDER]
    return [f for f in official if f in folders] + [f for f in folders if f not in official]
ROTATION_MODES = ("center_facing", "none", "trajectory_aligned")
DEFAULT_NUM_FRAMES = 121
DEFAULT_FOV_Y = math.radians(60.0)


def preset_distance(name: str, distance_factor: float = 1.0, rng: np.random.Generator | None = None) -> float:
    """Movement distance for preset ``name``: uniform in its range (midpoint without ``rng``) times the factor."""
    _check_preset(name)
    low, high = LYRA_PRESETS[name][2]
    base = 0.5 * (low + high) if rng is None else float(rng.uniform(low, high))
    return base * float(distance_factor)


def lyra_positions(
    name: str,
    num_frames: int = DEFAULT_NUM_FRAMES,
    *,
    distance: float,
    center_depth: float = 1.0,
) -> Tensor:  # [num_frames, 3] float64, in the first camera's frame
    """Camera centres of preset ``name`` (formulas in the module docstring)."""
    _check_preset(name)
    if num_frames < 1:
        raise InputDataError(f"a trajectory needs at least one frame, found {num_frames}")
    axis, sign, _ = LYRA_PRESETS[name]
    positions = torch.zeros(num_frames, 3, dtype=torch.float64)
    i = torch.arange(num_frames, dtype=torch.float64)
    if axis in ("x", "y", "z"):
        positions[:, "xyz".index(axis)] = sign * i * distance * center_depth / num_frames
    elif axis == "spiral":
        theta = torch.linspace(0.0, 4.0 * math.pi, num_frames, dtype=torch.float64)
        rx, ry = 0.15 * distance * center_depth, 0.10 * distance * center_depth
        positions[:, 0] = rx * (torch.cos(theta) - 1.0)
        positions[:, 1] = sign * ry * torch.sin(theta)
    return positions


def lyra_trajectory(
    name: str,
    num_frames: int = DEFAULT_NUM_FRAMES,
    *,
    rotation: str = "center_facing",
    distance: float | None = None,
    distance_factor: float = 1.0,
    center_depth: float = 1.0,
    rng: np.random.Generator | None = None,
    fov_y: float = DEFAULT_FOV_Y,
    width: int = 1280,
    height: int = 704,
    intrinsics: Tensor | None = None,  # [4] or [num_frames, 4]; overrides fov_y
    origin_c2w: Tensor | None = None,  # [4, 4] first camera in world space (identity by default)
) -> Camera:
    """Cameras ``[num_frames]`` along the Lyra preset ``name``.

    ``distance`` overrides the drawn distance (``distance_factor`` still applies).
    Poses are built in the first camera's frame, then mapped by ``origin_c2w``.
    """
    _check_preset(name)
    if rotation not in ROTATION_MODES:
        raise InputDataError(f"rotation must be one of {ROTATION_MODES}, found {rotation!r}")
    if not center_depth > 0:
        raise InputDataError(f"center_depth must be positive, found {center_depth}")
    d = preset_distance(name, 1.0, rng) if distance is None else float(distance)
    d *= float(distance_factor)
    positions = lyra_positions(name, num_frames, distance=d, center_depth=center_depth)  # [n, 3]
    c2w = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
    c2w[:, :3, 3] = positions
    if rotation == "center_facing":
        target = torch.tensor([0.0, 0.0, center_depth], dtype=torch.float64)
        c2w = look_at_c2w(positions, target.expand_as(positions), DEFAULT_UP)
    elif rotation == "trajectory_aligned":
        c2w[:, :3, :3] = _motion_aligned_rotations(positions)
    if origin_c2w is not None:
        c2w = torch.as_tensor(origin_c2w, dtype=torch.float64) @ c2w
    if intrinsics is None:
        return Camera.from_fov(c2w.float(), fov_y, width, height)
    k = torch.as_tensor(intrinsics, dtype=torch.float64).expand(num_frames, 4)
    return Camera(c2w.float(), k.float().clone(), width, height)


def orbit(
    target: Sequence[float] | Tensor,  # [3]
    radius: float,
    num_frames: int = DEFAULT_NUM_FRAMES,
    *,
    elevation: float = math.radians(15.0),
    start_azimuth: float = 0.0,
    turns: float = 1.0,
    up: Sequence[float] | Tensor = DEFAULT_UP,  # [3]
    fov_y: float = DEFAULT_FOV_Y,
    width: int = 512,
    height: int = 512,
) -> Camera:
    """Cameras ``[num_frames]`` circling ``target`` at ``radius``, looking at it.

    Azimuth 0 puts the camera on the target's -z side (in front of it, as the
    first camera of a Lyra scene is); ``elevation`` (radians) lifts it along
    ``up``. A full turn (``turns=1``) does not repeat the first frame at the end.
    """
    if not radius > 0 or num_frames < 1:
        raise InputDataError(f"orbit needs radius > 0 and num_frames >= 1, found {radius}, {num_frames}")
    target_t = torch.as_tensor(target, dtype=torch.float64)
    up_t = torch.nn.functional.normalize(torch.as_tensor(up, dtype=torch.float64), dim=0)
    # A horizontal basis (a, b) perpendicular to up, with a = -z projected when possible.
    back = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64)
    a = back - (back @ up_t) * up_t
    if a.norm() < 1e-6:
        a = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64) - up_t[0] * up_t
    a = a / a.norm()
    b = torch.linalg.cross(up_t, a, dim=0)
    azimuth = start_azimuth + 2.0 * math.pi * turns * torch.arange(num_frames, dtype=torch.float64) / num_frames
    horizontal = torch.cos(azimuth)[:, None] * a + torch.sin(azimuth)[:, None] * b  # [n, 3]
    offsets = radius * (math.cos(elevation) * horizontal + math.sin(elevation) * up_t)
    eyes = target_t + offsets
    c2w = look_at_c2w(eyes, target_t.expand_as(eyes), up_t.expand_as(eyes))
    return Camera.from_fov(c2w.float(), fov_y, width, height)


def _motion_aligned_rotations(positions: Tensor) -> Tensor:  # [n, 3] -> [n, 3, 3]
    """Rotations looking along the path tangent; identity where the camera does not move."""
    n = positions.shape[0]
    rot = torch.eye(3, dtype=positions.dtype).repeat(n, 1, 1)
    if n < 2:
        return rot
    tangent = torch.empty_like(positions)
    tangent[1:-1] = positions[2:] - positions[:-2]
    tangent[0] = positions[1] - positions[0]
    tangent[-1] = positions[-1] - positions[-2]
    moving = tangent.norm(dim=-1) > 1e-12
    if moving.any():
        # An up vector that is never parallel to the tangent: -y, or +z for vertical motion.
        up = torch.tensor(DEFAULT_UP, dtype=positions.dtype).expand_as(positions).clone()
        vertical = torch.nn.functional.normalize(tangent, dim=-1)[:, 1].abs() > 0.99
        up[vertical] = torch.tensor([0.0, 0.0, 1.0], dtype=positions.dtype)
        c2w = look_at_c2w(positions[moving], positions[moving] + tangent[moving], up[moving])
        rot[moving] = c2w[:, :3, :3]
    return rot


def _check_preset(name: str) -> None:
    if name not in LYRA_PRESETS:
        raise InputDataError(f"unknown trajectory {name!r}; expected one of {sorted(LYRA_PRESETS)}")

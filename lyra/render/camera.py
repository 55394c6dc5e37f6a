"""The one camera class of the project: OpenCV pinhole cameras, batched.

Convention (DESIGN.md): ``c2w [..., 4, 4]`` camera-to-world, OpenCV axes
(x right, y down, z forward); intrinsics ``[..., 4] = (fx, fy, cx, cy)`` in
pixels for an image of ``width x height`` pixels with pixel centres at +0.5.
Leading dimensions ``...`` are a batch of cameras sharing one image size.

viser's client camera is OpenCV too (``viser/_viser.py``: "look_direction is
+Z, up_direction is -Y, right_direction is +X"): its ``wxyz`` is the rotation
of camera-to-world, ``position`` the camera centre, ``fov`` the *vertical*
field of view in radians and ``aspect`` width / height. So the conversion is a
quaternion <-> matrix change plus ``fy = (H / 2) / tan(fov / 2)``, square
pixels, principal point at the image centre.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError, UnsizedError
from lyra.render.rays import pixel_rays, plucker_embedding, scale_intrinsics
from lyra.scene.gaussians import quats_to_rotmats, rotmats_to_quats

MIN_ASPECT, MAX_ASPECT = 1 / 16, 16.0  # a browser view's width / height; anything beyond is not a screen

# Lyra's scenes live in the first camera's OpenCV frame, where "up" is -y.
DEFAULT_UP = (0.0, -1.0, 0.0)


@dataclasses.dataclass(eq=False)
class Camera:
    """OpenCV pinhole camera(s); see the module docstring for conventions.

    Raises :class:`lyra.errors.InputDataError` when shapes, sizes or values are invalid.
    """

    c2w: Tensor  # [..., 4, 4] camera-to-world, OpenCV
    intrinsics: Tensor  # [..., 4] (fx, fy, cx, cy) in pixels
    width: int
    height: int

    def __post_init__(self) -> None:
        self.c2w = torch.as_tensor(self.c2w)
        if not self.c2w.is_floating_point():
            self.c2w = self.c2w.float()
        self.intrinsics = torch.as_tensor(self.intrinsics, dtype=self.c2w.dtype, device=self.c2w.device)
        if self.c2w.shape[-2:] != (4, 4):
            raise InputDataError(f"camera c2w must be [..., 4, 4], found {tuple(self.c2w.shape)}")
        if self.intrinsics.shape[-1:] != (4,):
            raise InputDataError(f"camera intrinsics must be [..., 4] (fx, fy, cx, cy), found {tuple(self.intrinsics.shape)}")
        if self.c2w.shape[:-2] != self.intrinsics.shape[:-1]:
            raise InputDataError(
                f"camera batch shapes differ: c2w {tuple(self.c2w.shape[:-2])} vs intrinsics {tuple(self.intrinsics.shape[:-1])}"
            )
        self.width, self.height = int(self.width), int(self.height)
        if self.width < 1 or self.height < 1:
            raise InputDataError(f"image size must be positive, found {self.width}x{self.height}")
        if not (torch.isfinite(self.c2w).all() and torch.isfinite(self.intrinsics).all()):
            raise InputDataError("camera c2w / intrinsics contain NaN or Inf")
        if (self.intrinsics[..., :2] <= 0).any():
            raise InputDataError("camera focal lengths fx, fy must be positive")

    # ----------------------------------------------------------------- build
    @classmethod
    def from_fov(
        cls,
        c2w: Tensor,  # [..., 4, 4]
        fov_y: float,
        width: int,
        height: int,
    ) -> Camera:
        """Square-pixel camera with vertical field of view ``fov_y`` (radians), centred principal point."""
        c2w = torch.as_tensor(c2w)
        if not c2w.is_floating_point():
            c2w = c2w.float()
        if not 0 < fov_y < math.pi:
            raise InputDataError(f"vertical field of view must be in (0, pi) radians, found {fov_y}")
        focal = 0.5 * height / math.tan(0.5 * fov_y)
        k = c2w.new_tensor([focal, focal, 0.5 * width, 0.5 * height]).expand(*c2w.shape[:-2], 4)
        return cls(c2w, k.clone(), width, height)

    @classmethod
    def look_at(
        cls,
        eye: Tensor | Sequence[float],  # [..., 3]
        target: Tensor | Sequence[float],  # [..., 3]
        *,
        up: Tensor | Sequence[float] = DEFAULT_UP,  # [..., 3] world up (image "up" is -y)
        fov_y: float = math.radians(60.0),
        width: int = 512,
        height: int = 512,
    ) -> Camera:
        """Camera(s) at ``eye`` looking at ``target`` with the image up along ``up``."""
        return cls.from_fov(look_at_c2w(eye, target, up), fov_y, width, height)

    @staticmethod
    def stack(cameras: Sequence[Camera]) -> Camera:
        """Stack single cameras (or batches of equal shape) along a new first axis."""
        if not cameras:
            raise InputDataError("cannot stack an empty list of cameras")
        sizes = {(c.width, c.height) for c in cameras}
        if len(sizes) != 1:
            raise InputDataError(f"stacked cameras must share one image size, found {sorted(sizes)}")
        first = cameras[0]
        return Camera(
            torch.stack([c.c2w for c in cameras]),
            torch.stack([c.intrinsics for c in cameras]),
            first.width,
            first.height,
        )

    # ---------------------------------------------------------- properties
    @property
    def batch_shape(self) -> torch.Size:
        return self.c2w.shape[:-2]

    def __len__(self) -> int:
        if not self.batch_shape:
            raise UnsizedError("a single camera has no len(); use batch_shape")
        return self.batch_shape[0]

    def __getitem__(self, index: Any) -> Camera:
        """Index the leading (batch) dimensions."""
        return Camera(self.c2w[index], self.intrinsics[index], self.width, self.height)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def flatten(self) -> Camera:
        """A 1-D batch ``[B]`` (a single camera becomes ``[1]``)."""
        return Camera(self.c2w.reshape(-1, 4, 4), self.intrinsics.reshape(-1, 4), self.width, self.height)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Camera:
        return Camera(self.c2w.to(device, dtype), self.intrinsics.to(device, dtype), self.width, self.height)

    @property
    def position(self) -> Tensor:  # [..., 3]
        return self.c2w[..., :3, 3]

    @property
    def rotation(self) -> Tensor:  # [..., 3, 3] camera-to-world
        return self.c2w[..., :3, :3]

    @property
    def forward(self) -> Tensor:  # [..., 3] viewing direction (+z of the camera) in world space
        return self.c2w[..., :3, 2]

    def w2c(self) -> Tensor:  # [..., 4, 4]
        """World-to-camera matrices (gsplat's ``viewmats``); rigid inverse."""
        rot_t = self.rotation.transpose(-1, -2)
        w2c = torch.zeros_like(self.c2w)
        w2c[..., :3, :3] = rot_t
        w2c[..., :3, 3] = -(rot_t @ self.position.unsqueeze(-1)).squeeze(-1)
        w2c[..., 3, 3] = 1.0
        return w2c

    def K(self) -> Tensor:  # [..., 3, 3]
        """Intrinsic matrices."""
        return intrinsics_matrix(self.intrinsics)

    @property
    def fov_y(self) -> Tensor:  # [...] vertical field of view in radians
        return 2.0 * torch.atan(0.5 * self.height / self.intrinsics[..., 1])

    @property
    def fov_x(self) -> Tensor:  # [...]
        return 2.0 * torch.atan(0.5 * self.width / self.intrinsics[..., 0])

    # ---------------------------------------------------------- operations
    def resized(self, width: int, height: int) -> Camera:
        """The same camera for an image resized to ``width x height`` (intrinsics scaled)."""
        k = scale_intrinsics(self.intrinsics, width / self.width, height / self.height)
        return Camera(self.c2w, k, width, height)

    def rays(self) -> tuple[Tensor, Tensor]:
        """Per-pixel ray origins and unit directions, each ``[..., H, W, 3]``."""
        return pixel_rays(self.c2w, self.intrinsics, self.width, self.height)

    def plucker(self) -> Tensor:
        """Per-pixel Plucker embedding ``[o x d, d]``, ``[..., H, W, 6]``."""
        return plucker_embedding(*self.rays())

    # --------------------------------------------------------------- viser
    def to_viser(self) -> dict[str, Any]:
        """Keyword values for a viser client camera (a single camera only).

        Returns ``{"wxyz", "position", "fov", "aspect", "look_at"}`` as numpy /
        floats; ``fov`` is vertical, in radians; ``look_at`` is one unit ahead.
        Assign ``wxyz``/``position``/``fov`` to a ``viser.CameraHandle``.
        A non-centred principal point or non-square pixels cannot be represented
        by viser and are dropped (``fov`` keeps the vertical extent).
        """
        if self.batch_shape:
            raise InputDataError(f"to_viser needs a single camera, found batch {tuple(self.batch_shape)}")
        c2w = self.c2w.detach().double().cpu()
        wxyz = rotmats_to_quats(c2w[:3, :3]).numpy()
        position = c2w[:3, 3].numpy()
        return {
            "wxyz": wxyz,
            "position": position,
            "fov": float(self.fov_y),
            "aspect": self.width / self.height,
            "look_at": position + c2w[:3, 2].numpy(),
        }

    @classmethod
    def from_viser(
        cls,
        camera: Any = None,
        *,
        wxyz: Sequence[float] | None = None,  # [4]
        position: Sequence[float] | None = None,  # [3]
        fov: float | None = None,
        width: int | None = None,
        height: int = 512,
        aspect: float | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Camera:
        """Camera from a ``viser.CameraHandle`` (or its ``wxyz``/``position``/``fov``/``aspect``).

        ``height`` picks the render resolution; ``width`` defaults to
        ``round(height * aspect)`` so the image matches the client canvas.
        """
        if camera is not None:
            wxyz = camera.wxyz if wxyz is None else wxyz
            position = camera.position if position is None else position
            fov = camera.fov if fov is None else fov
            aspect = camera.aspect if aspect is None else aspect
        if wxyz is None or position is None or fov is None:
            raise InputDataError("from_viser needs a camera handle or wxyz, position and fov")
        # A browser reports these: bound them before they size an image (an aspect of 1e6 is terabytes).
        if not (isinstance(fov, (int, float)) and 0.0 < float(fov) < math.pi):
            raise InputDataError(f"the view's field of view: expected 0 < fov < pi radians, found {fov!r:.40}")
        if aspect is not None and not (isinstance(aspect, (int, float)) and MIN_ASPECT <= float(aspect) <= MAX_ASPECT):
            raise InputDataError(f"the view's aspect ratio: expected {MIN_ASPECT:g}..{MAX_ASPECT:g} (width / height), "
                                 f"found {aspect!r:.40}")
        if width is None:
            width = max(1, round(height * (aspect if aspect is not None else 1.0)))
        rot = quats_to_rotmats(torch.as_tensor(np.asarray(wxyz, dtype=np.float64)))
        c2w = torch.eye(4, dtype=torch.float64)
        c2w[:3, :3] = rot
        c2w[:3, 3] = torch.as_tensor(np.asarray(position, dtype=np.float64))
        return cls.from_fov(c2w.to(dtype), float(fov), width, height)


def intrinsics_matrix(intrinsics: Tensor) -> Tensor:  # [..., 4] (fx, fy, cx, cy) -> [..., 3, 3]
    """Pinhole matrices ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
    fx, fy, cx, cy = intrinsics.unbind(-1)
    zero, one = torch.zeros_like(fx), torch.ones_like(fx)
    rows = [fx, zero, cx, zero, fy, cy, zero, zero, one]
    return torch.stack(rows, dim=-1).reshape(*fx.shape, 3, 3)


def look_at_c2w(
    eye: Tensor | Sequence[float],  # [..., 3]
    target: Tensor | Sequence[float],  # [..., 3]
    up: Tensor | Sequence[float] = DEFAULT_UP,  # [..., 3]
) -> Tensor:  # [..., 4, 4]
    """OpenCV camera-to-world looking from ``eye`` at ``target``, image up along ``up``.

    z = normalize(target - eye), x = normalize(z x up), y = z x x (so -y ~ up).
    Raises InputDataError when eye == target or the view is parallel to ``up``.
    """
    eye = torch.as_tensor(eye)
    eye = eye if eye.is_floating_point() else eye.float()
    target = torch.as_tensor(target, dtype=eye.dtype)
    up = torch.as_tensor(up, dtype=eye.dtype)
    eye, target, up = torch.broadcast_tensors(eye, target, up)
    forward = target - eye
    forward_norm = forward.norm(dim=-1, keepdim=True)
    if (forward_norm <= 1e-12).any():
        raise InputDataError("look_at: eye and target coincide; the view direction is undefined")
    z = forward / forward_norm
    x = torch.linalg.cross(z, up, dim=-1)
    x_norm = x.norm(dim=-1, keepdim=True)
    if (x_norm <= 1e-9 * up.norm(dim=-1, keepdim=True).clamp_min(1e-30)).any():
        raise InputDataError("look_at: the view direction is parallel to the up vector; pass another up")
    x = x / x_norm
    y = torch.linalg.cross(z, x, dim=-1)
    c2w = torch.zeros(*eye.shape[:-1], 4, 4, dtype=eye.dtype)
    c2w[..., :3, 0], c2w[..., :3, 1], c2w[..., :3, 2], c2w[..., :3, 3] = x, y, z, eye
    c2w[..., 3, 3] = 1.0
    return c2w

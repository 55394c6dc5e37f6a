"""The static Gaussian scene model.

All attributes are *activated* (the space a renderer consumes), never the
log/logit space of a PLY file:

=============  ============  ==============================================
attribute      shape         convention
=============  ============  ==============================================
``means``      ``[N, 3]``    world-space centres
``quats``      ``[N, 4]``    unit quaternions, (w, x, y, z)
``scales``     ``[N, 3]``    linear standard deviations along the local axes
``opacities``  ``[N]``       in [0, 1]
``sh``         ``[N, K, 3]`` SH coefficients, K = (d+1)^2, DC first, 3DGS space
``extras``     ``{name: [N, ...]}`` any other per-splat attribute, carried along
``origin``     ``str|None``  provenance: :data:`LYRA_ORIGIN` for scenes that came from Lyra
                             (picks the render look, :mod:`lyra.render.looks`); None if unknown
=============  ============  ==============================================

Base colour is ``0.5 + SH_C0 * sh[:, 0]`` (see :mod:`lyra.scene.sh`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import InvalidGaussiansError
from lyra.scene.sh import num_sh_coeffs, rgb_to_sh_dc, sh_dc_to_rgb, sh_degree_from_coeffs

# Quaternions are stored unnormalised in files; below this largest |component| one is treated as zero.
MIN_QUAT_NORM = 1e-8
_CORE_FIELDS = ("means", "quats", "scales", "opacities", "sh")
LYRA_ORIGIN = "lyra"  # official Lyra tensor files, scenes decoded by the Lyra decoder, files written from those


@dataclasses.dataclass(eq=False)
class Gaussians:
    """A set of 3D Gaussians with activated attributes (see module docstring)."""

    means: Tensor  # [N, 3]
    quats: Tensor  # [N, 4] (w, x, y, z), unit
    scales: Tensor  # [N, 3] linear
    opacities: Tensor  # [N] in [0, 1]
    sh: Tensor  # [N, K, 3]
    extras: dict[str, Tensor] = dataclasses.field(default_factory=dict)  # {name: [N, ...]}
    origin: str | None = None  # provenance (LYRA_ORIGIN or None); carried by map/replace/cat

    def __post_init__(self) -> None:
        self.check_shapes()

    # ----------------------------------------------------------------- build
    @classmethod
    def from_rgb(
        cls,
        means: Tensor,  # [N, 3]
        quats: Tensor,  # [N, 4] (w, x, y, z); normalised here
        scales: Tensor,  # [N, 3]
        opacities: Tensor,  # [N]
        rgb: Tensor,  # [N, 3] in [0, 1]
        sh_degree: int = 0,
        extras: dict[str, Tensor] | None = None,
    ) -> Gaussians:
        """Gaussians whose colour is view-independent ``rgb`` (higher SH bands zero)."""
        sh = torch.zeros(len(means), num_sh_coeffs(sh_degree), 3, dtype=means.dtype, device=means.device)
        sh[:, 0] = rgb_to_sh_dc(rgb.to(means.dtype))
        return cls(means, normalize_quats(quats), scales, opacities, sh, dict(extras or {}))

    @classmethod
    def empty(cls, sh_degree: int = 0, dtype: torch.dtype = torch.float32) -> Gaussians:
        z = lambda *s: torch.zeros(*s, dtype=dtype)  # noqa: E731
        return cls(z(0, 3), z(0, 4), z(0, 3), z(0), z(0, num_sh_coeffs(sh_degree), 3))

    @staticmethod
    def cat(parts: Sequence[Gaussians]) -> Gaussians:
        """Concatenate; SH degrees are raised to the highest (missing bands zero).

        Extras are kept only when every part has them with matching trailing shape;
        the origin only when every part has the same one.
        """
        if not parts:
            raise InvalidGaussiansError("cannot concatenate an empty list of Gaussians")
        degree = max(p.sh_degree for p in parts)
        parts = [p.with_sh_degree(degree) for p in parts]
        shared = set(parts[0].extras)
        for p in parts[1:]:
            shared &= {k for k, v in p.extras.items() if v.shape[1:] == parts[0].extras[k].shape[1:]}
        return Gaussians(
            **{f: torch.cat([getattr(p, f) for p in parts]) for f in _CORE_FIELDS},
            extras={k: torch.cat([p.extras[k] for p in parts]) for k in sorted(shared)},
            origin=parts[0].origin if all(p.origin == parts[0].origin for p in parts) else None,
        )

    # ------------------------------------------------------------ properties
    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_coeffs(self.sh.shape[1])

    @property
    def device(self) -> torch.device:
        return self.means.device

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def rgb(self) -> Tensor:
        """View-independent base colour ``[N, 3]`` from the DC band (not clamped)."""
        return sh_dc_to_rgb(self.sh[:, 0])

    def rotation_matrices(self) -> Tensor:
        """Rotation matrices ``[N, 3, 3]`` of the (normalised) quaternions."""
        return quats_to_rotmats(self.quats)

    def covariances(self) -> Tensor:
        """World-space covariances ``R diag(s^2) R^T``, ``[N, 3, 3]``."""
        rot = self.rotation_matrices()
        m = rot * self.scales.unsqueeze(-2)  # R @ diag(s)
        return m @ m.transpose(-1, -2)

    def bounds(self) -> tuple[Tensor, Tensor]:
        """Axis-aligned box of the centres: ``(min [3], max [3])``; zeros when empty."""
        if len(self) == 0:
            zero = torch.zeros(3, dtype=self.dtype)
            return zero, zero.clone()
        return self.means.min(dim=0).values, self.means.max(dim=0).values

    # ------------------------------------------------------------- selection
    def __getitem__(self, index: Tensor | slice | Sequence[int]) -> Gaussians:
        """Select splats by boolean mask ``[N]``, integer indices or slice."""
        if isinstance(index, Tensor) and index.dtype == torch.bool and index.shape != (len(self),):
            raise InvalidGaussiansError(f"boolean mask has shape {tuple(index.shape)}, expected ({len(self)},)")
        if not isinstance(index, (Tensor, slice)):
            index = torch.as_tensor(index, dtype=torch.long)
        return self.map(lambda t: t[index])

    def map(self, fn) -> Gaussians:
        """Apply ``fn`` to every per-splat tensor (core fields and extras)."""
        return Gaussians(
            **{f: fn(getattr(self, f)) for f in _CORE_FIELDS},
            extras={k: fn(v) for k, v in self.extras.items()},
            origin=self.origin,
        )

    def replace(self, **fields) -> Gaussians:
        """A copy with some attributes replaced (shapes checked)."""
        return dataclasses.replace(self, **fields)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Gaussians:
        """Move to a device and/or cast floating tensors to ``dtype``."""

        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if (dtype is not None and t.is_floating_point()) else None)

        return self.map(move)

    def clone(self) -> Gaussians:
        return self.map(torch.clone)

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Truncate or zero-pad the SH bands to ``degree``."""
        k = num_sh_coeffs(degree)
        have = self.sh.shape[1]
        if k == have:
            return self
        if k < have:
            sh = self.sh[:, :k]
        else:
            sh = torch.cat([self.sh, self.sh.new_zeros(len(self), k - have, 3)], dim=1)
        return self.replace(sh=sh)

    # ------------------------------------------------------------ validation
    def check_shapes(self) -> None:
        """Raise InvalidGaussiansError unless every attribute has N rows and the documented shape."""
        n = self.means.shape[0] if self.means.ndim >= 1 else -1
        expected = {"means": (n, 3), "quats": (n, 4), "scales": (n, 3), "opacities": (n,)}
        for name, shape in expected.items():
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise InvalidGaussiansError(f"{name} has shape {got}, expected {shape}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise InvalidGaussiansError(f"sh has shape {tuple(self.sh.shape)}, expected ({n}, K, 3)")
        try:
            sh_degree_from_coeffs(self.sh.shape[1])
        except ValueError as exc:
            raise InvalidGaussiansError(str(exc)) from None
        for name, value in self.extras.items():
            if value.ndim < 1 or value.shape[0] != n:
                raise InvalidGaussiansError(f"extra attribute {name!r} has shape {tuple(value.shape)}, expected ({n}, ...)")

    def invalid_mask(self) -> Tensor:
        """``[N]`` bool: splats with a NaN/Inf value or a (near-)zero quaternion.

        A quaternion counts as zero when its largest component is below
        ``MIN_QUAT_NORM`` (its norm is within 2x of that): normalising
        one of norm 1e-30 squares values to 0 in float32 and gives NaN rotations.
        """
        bad = ~torch.isfinite(self.means).all(-1)
        bad |= ~torch.isfinite(self.quats).all(-1) | (self.quats.abs().amax(-1) < MIN_QUAT_NORM)
        bad |= ~torch.isfinite(self.scales).all(-1)
        bad |= ~torch.isfinite(self.opacities)
        bad |= ~torch.isfinite(self.sh).flatten(1).all(-1)
        return bad

    def validate(self) -> None:
        """Raise InvalidGaussiansError on NaN/Inf values, zero quaternions or out-of-range activations."""
        self.check_shapes()
        bad = self.invalid_mask()
        if bool(bad.any()):
            first = int(bad.nonzero()[0])
            raise InvalidGaussiansError(
                f"{int(bad.sum())} of {len(self)} splats have NaN/Inf values or zero quaternions (first: index {first})"
            )
        if len(self) and (bool((self.opacities < 0).any()) or bool((self.opacities > 1).any())):
            raise InvalidGaussiansError("opacities must lie in [0, 1] (activated, not logits)")
        if len(self) and bool((self.scales < 0).any()):
            raise InvalidGaussiansError("scales must be non-negative (linear, not log)")

    def drop_invalid(self) -> tuple[Gaussians, int]:
        """Remove splats with NaN/Inf values or zero quaternions; returns ``(clean, dropped_count)``."""
        bad = self.invalid_mask()
        dropped = int(bad.sum())
        return (self[~bad] if dropped else self), dropped

    def equal(self, other: Gaussians, atol: float = 0.0) -> bool:
        """True when every core attribute matches within ``atol``."""
        if len(self) != len(other) or self.sh.shape != other.sh.shape:
            return False
        return all(torch.allclose(getattr(self, f), getattr(other, f), atol=atol, rtol=0) for f in _CORE_FIELDS)


def normalize_quats(quats: Tensor) -> Tensor:  # [N, 4] -> [N, 4]
    """Unit quaternions; zero rows stay zero (callers reject them)."""
    norm = quats.norm(dim=-1, keepdim=True)
    return quats / torch.where(norm > 0, norm, torch.ones_like(norm))


def quats_to_rotmats(quats: Tensor) -> Tensor:  # [..., 4] (w, x, y, z) -> [..., 3, 3]
    """Rotation matrices of (w, x, y, z) quaternions (normalised first); differentiable."""
    w, x, y, z = normalize_quats(quats).unbind(-1)
    xx, yy, zz, xy, xz, yz = x * x, y * y, z * z, x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    # Writing the entries into one preallocated tensor is ~1.5x faster than stacking 9 columns.
    rot = quats.new_empty(*quats.shape[:-1], 3, 3)
    rot[..., 0, 0], rot[..., 0, 1], rot[..., 0, 2] = 1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy)
    rot[..., 1, 0], rot[..., 1, 1], rot[..., 1, 2] = 2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx)
    rot[..., 2, 0], rot[..., 2, 1], rot[..., 2, 2] = 2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)
    return rot


def rotmats_to_quats(rotmats: Tensor) -> Tensor:  # [..., 3, 3] -> [..., 4] (w, x, y, z), w >= 0
    """Quaternions of rotation matrices (Shepperd's method, numerically stable)."""
    m = rotmats
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], m[..., 1, 2] + m[..., 2, 1]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1], 1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1),
        ],
        dim=-2,
    )  # [..., 4 candidates, 4]
    diag = torch.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = diag.argmax(-1, keepdim=True)
    q = torch.gather(candidates, -2, best.unsqueeze(-1).expand(*best.shape[:-1], 1, 4)).squeeze(-2)
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)



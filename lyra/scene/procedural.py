"""Procedural surfaces made of flat, oriented Gaussians (the demo scenes, the synthetic teacher, tests).

Every sampler returns a :class:`lyra.scene.Gaussians` whose splats are thin
discs lying in the surface: local x/y axes along the surface tangents, local
z along the normal, with in-plane sizes matched to the sample spacing so the
surface renders closed. Samplers work in a *y-up* modelling frame
(x right, y up, z towards the viewer); the demo builder (``scenes/build_demo.py``) turns the
finished scene into the project's stored frame.

Randomness only comes from the ``torch.Generator`` passed in, so the same
seed gives bit-identical tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from lyra.scene import Gaussians, rotmats_to_quats
from lyra.scene.sh import rgb_to_sh_dc, sh_basis

# In-plane sigma as a fraction of the sample spacing: large enough for a closed surface, small enough to stay crisp.
FOOTPRINT = 0.65
# Thickness (sigma along the normal) as a fraction of the in-plane sigma: "flat" splats.
FLATNESS = 0.12

ColorFn = Callable[[Tensor], Tensor]  # points [N, 3] -> rgb [N, 3]


def _normalize(v: Tensor) -> Tensor:
    return torch.nn.functional.normalize(v, dim=-1)


def oriented_splats(
    points: Tensor,  # [N, 3]
    tangent_u: Tensor,  # [N, 3] unit, first in-plane axis
    normals: Tensor,  # [N, 3] unit
    size_u: Tensor | float,  # [N] or scalar: sample spacing along tangent_u
    size_v: Tensor | float,  # [N] or scalar: sample spacing along the second tangent
    rgb: Tensor,  # [N, 3]
    opacity: float = 0.95,
    sh_degree: int = 0,
) -> Gaussians:
    """Flat splats in the tangent planes: scales ``FOOTPRINT * size`` in-plane, ``FLATNESS`` of that across."""
    normals = _normalize(normals)
    # Re-orthogonalise the tangent against the normal so the frame is a proper rotation.
    tangent_u = _normalize(tangent_u - (tangent_u * normals).sum(-1, keepdim=True) * normals)
    tangent_v = torch.linalg.cross(normals, tangent_u, dim=-1)
    rot = torch.stack([tangent_u, tangent_v, normals], dim=-1)  # [N, 3, 3], columns = local axes
    n = len(points)
    su = torch.as_tensor(size_u, dtype=points.dtype).expand(n) * FOOTPRINT
    sv = torch.as_tensor(size_v, dtype=points.dtype).expand(n) * FOOTPRINT
    scales = torch.stack([su, sv, FLATNESS * torch.minimum(su, sv)], dim=-1)
    return Gaussians.from_rgb(
        points, rotmats_to_quats(rot), scales, torch.full((n,), opacity), rgb.clamp(0, 1), sh_degree=sh_degree
    )


def any_tangent(normals: Tensor) -> Tensor:  # [N, 3] -> [N, 3] unit, perpendicular to normals
    helper = torch.where(
        normals[:, :1].abs() < 0.9, normals.new_tensor([1.0, 0.0, 0.0]), normals.new_tensor([0.0, 1.0, 0.0])
    )
    return _normalize(torch.linalg.cross(normals, helper, dim=-1))


# ---------------------------------------------------------------- samplers
def disc(radius: float, count: int, color: ColorFn, gen: torch.Generator, y: float = 0.0) -> Gaussians:
    """Horizontal disc at height ``y`` facing up, sunflower-sampled (even spacing, no visible grid)."""
    i = torch.arange(count, dtype=torch.float32) + 0.5
    r = radius * torch.sqrt(i / count)
    theta = i * math.pi * (3.0 - math.sqrt(5.0))
    jitter = (torch.rand(count, generator=gen) - 0.5) * 0.2
    theta = theta + jitter / torch.sqrt(i)
    points = torch.stack([r * torch.cos(theta), torch.full_like(r, y), r * torch.sin(theta)], dim=-1)
    normals = points.new_tensor([0.0, 1.0, 0.0]).expand(count, 3)
    tangents = _normalize(torch.stack([-torch.sin(theta), torch.zeros_like(r), torch.cos(theta)], dim=-1))
    spacing = radius * math.sqrt(math.pi / count)
    return oriented_splats(points, tangents, normals, spacing * 1.1, spacing * 1.1, color(points), opacity=0.98)


def sphere(center: Tensor, radius: float, count: int, color: ColorFn, sh_degree: int = 0) -> Gaussians:
    """Sphere surface on a Fibonacci lattice."""
    i = torch.arange(count, dtype=torch.float32) + 0.5
    y = 1.0 - 2.0 * i / count
    ring = torch.sqrt((1.0 - y * y).clamp_min(0))
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    normals = torch.stack([ring * torch.cos(phi), y, ring * torch.sin(phi)], dim=-1)
    points = center + radius * normals
    spacing = radius * math.sqrt(4.0 * math.pi / count)
    return oriented_splats(points, any_tangent(normals), normals, spacing, spacing, color(points), sh_degree=sh_degree)


def torus(center: Tensor, major: float, minor: float, count: int, color: ColorFn, sh_degree: int = 0) -> Gaussians:
    """Torus around the local y axis; a grid in (u around the ring, v around the tube)."""
    n_v = max(8, int(round(math.sqrt(count * minor / major))))
    n_u = max(8, count // n_v)
    u = (torch.arange(n_u, dtype=torch.float32) + 0.5) * (2 * math.pi / n_u)
    v = (torch.arange(n_v, dtype=torch.float32) + 0.5) * (2 * math.pi / n_v)
    u, v = (t.reshape(-1) for t in torch.meshgrid(u, v, indexing="ij"))
    ring_dir = torch.stack([torch.cos(u), torch.zeros_like(u), torch.sin(u)], dim=-1)
    up = ring_dir.new_tensor([0.0, 1.0, 0.0]).expand_as(ring_dir)
    normals = torch.cos(v)[:, None] * ring_dir + torch.sin(v)[:, None] * up
    points = center + (major + minor * torch.cos(v))[:, None] * ring_dir + minor * torch.sin(v)[:, None] * up
    tangent_u = torch.stack([-torch.sin(u), torch.zeros_like(u), torch.cos(u)], dim=-1)
    size_u = (major + minor * torch.cos(v)) * (2 * math.pi / n_u)
    size_v = torch.full_like(u, minor * 2 * math.pi / n_v)
    return oriented_splats(points, tangent_u, normals, size_u, size_v, color(points), sh_degree=sh_degree)


def box(center: Tensor, half: Tensor, yaw: float, per_face: int, color: ColorFn, sh_degree: int = 0) -> Gaussians:
    """Axis-aligned box (half extents ``half [3]``) turned by ``yaw`` radians about y; grid on each face."""
    parts = []
    cos, sin = math.cos(yaw), math.sin(yaw)
    rot = torch.tensor([[cos, 0.0, sin], [0.0, 1.0, 0.0], [-sin, 0.0, cos]])
    for axis in range(3):
        a, b = [k for k in range(3) if k != axis]
        side = max(2, int(round(math.sqrt(per_face * half[a] / half[b]))))
        other = max(2, per_face // side)
        ga = (torch.arange(side, dtype=torch.float32) + 0.5) / side * 2 - 1
        gb = (torch.arange(other, dtype=torch.float32) + 0.5) / other * 2 - 1
        ga, gb = (t.reshape(-1) for t in torch.meshgrid(ga, gb, indexing="ij"))
        for sign in (-1.0, 1.0):
            local = torch.zeros(len(ga), 3)
            local[:, a], local[:, b], local[:, axis] = ga * half[a], gb * half[b], sign * half[axis]
            normal = torch.zeros(len(ga), 3)
            normal[:, axis] = sign
            tangent = torch.zeros(len(ga), 3)
            tangent[:, a] = 1.0
            points = local @ rot.T + center
            parts.append(
                oriented_splats(
                    points,
                    tangent @ rot.T,
                    normal @ rot.T,
                    2 * float(half[a]) / side,
                    2 * float(half[b]) / other,
                    color(points),
                    sh_degree=sh_degree,
                )
            )
    return Gaussians.cat(parts)


def cylinder(base: Tensor, radius: float, height: float, count: int, color: ColorFn) -> Gaussians:
    """Open vertical cylinder from ``base`` up by ``height``."""
    n_around = max(8, int(round(math.sqrt(count * 2 * math.pi * radius / height))))
    n_up = max(2, count // n_around)
    ang = (torch.arange(n_around, dtype=torch.float32) + 0.5) * (2 * math.pi / n_around)
    hts = (torch.arange(n_up, dtype=torch.float32) + 0.5) * (height / n_up)
    ang, hts = (t.reshape(-1) for t in torch.meshgrid(ang, hts, indexing="ij"))
    normals = torch.stack([torch.cos(ang), torch.zeros_like(ang), torch.sin(ang)], dim=-1)
    points = base + radius * normals + torch.stack([torch.zeros_like(hts), hts, torch.zeros_like(hts)], dim=-1)
    tangent = torch.stack([-torch.sin(ang), torch.zeros_like(ang), torch.cos(ang)], dim=-1)
    return oriented_splats(points, tangent, normals, 2 * math.pi * radius / n_around, height / n_up, color(points))


def cone(base: Tensor, radius: float, height: float, count: int, color: ColorFn) -> Gaussians:
    """Cone surface standing on ``base`` with its tip ``height`` above (area-uniform sampling)."""
    i = torch.arange(count, dtype=torch.float32) + 0.5
    frac = torch.sqrt(i / count)  # distance from the tip, area-uniform
    ang = i * math.pi * (3.0 - math.sqrt(5.0))
    slant = math.hypot(radius, height)
    around = torch.stack([torch.cos(ang), torch.zeros_like(ang), torch.sin(ang)], dim=-1)
    up = around.new_tensor([0.0, 1.0, 0.0])
    points = base + frac[:, None] * radius * around + (1 - frac)[:, None] * height * up
    normals = _normalize(around * height + up * radius)
    tangent = torch.stack([-torch.sin(ang), torch.zeros_like(ang), torch.cos(ang)], dim=-1)
    spacing = math.sqrt(math.pi * radius * slant / count)
    return oriented_splats(points, tangent, normals, spacing, spacing, color(points))


def blob(
    center: Tensor, radii: Tensor, count: int, color: ColorFn, gen: torch.Generator, splat_size: float
) -> Gaussians:
    """A fluffy volume (foliage, smoke): random points in an ellipsoid, randomly oriented, rounder splats."""
    direction = _normalize(torch.randn(count, 3, generator=gen))
    depth = torch.rand(count, generator=gen).pow(1 / 3) * (0.7 + 0.3 * torch.rand(count, generator=gen))
    points = center + direction * depth[:, None] * radii
    quats = _normalize(torch.randn(count, 4, generator=gen))
    scales = splat_size * (0.6 + 0.8 * torch.rand(count, 3, generator=gen))
    scales[:, 2] *= 0.4
    opacity = 0.75 + 0.2 * torch.rand(count, generator=gen)
    return Gaussians.from_rgb(points, quats, scales, opacity, color(points).clamp(0, 1))


# ------------------------------------------------------------------ colour
def solid(rgb: tuple[float, float, float]) -> ColorFn:
    return lambda p: p.new_tensor(rgb).expand(len(p), 3).clone()


def view_dependent_sheen(g: Gaussians, light_dir: tuple[float, float, float], strength: float) -> Gaussians:
    """Add a degree-1 highlight: brighter when seen from the mirror direction of ``light_dir``.

    For each splat with normal ``n`` (its local z axis), the light's mirror
    direction ``r`` gives an extra ``strength * (-d . r)`` for a view direction
    ``d`` (camera -> splat), written into the degree-1 SH band (which holds
    exactly the linear functions of ``d``).
    """
    if g.sh_degree < 1:
        g = g.with_sh_degree(1)
    normals = g.rotation_matrices()[:, :, 2]  # [N, 3]
    light = _normalize(g.means.new_tensor(light_dir).expand_as(normals))
    mirror = 2 * (normals * light).sum(-1, keepdim=True) * normals - light  # [N, 3]
    a = -strength * mirror  # colour gain per unit of d: f(d) = a . d
    # The degree-1 basis is linear in d: Y1(d) = d @ B with B[i, k] = Y1_k(e_i); so c = B^-1 a.
    basis = sh_basis(torch.eye(3, dtype=torch.float64), 1)[:, 1:4]  # [3 axes, 3 basis functions]
    coeffs = a @ torch.linalg.inv(basis).T.to(a.dtype)  # [N, 3 basis]
    sh = g.sh.clone()
    sh[:, 1:4] = coeffs[:, :, None].expand(-1, -1, 3)
    return g.replace(sh=sh)


def lit(
    g: Gaussians,
    light_dir: tuple[float, float, float] = (0.4, 1.0, 0.5),
    ambient: float = 0.5,
    normals: Tensor | None = None,  # [N, 3]; default: each splat's local z axis (its surface normal)
) -> Gaussians:
    """Bake simple Lambert lighting into the base colour so round things read as round.

    ``rgb' = rgb * (ambient + (1 - ambient) * max(0, n . l))``; higher SH bands are untouched.
    """
    if normals is None:
        normals = g.rotation_matrices()[:, :, 2]
    light = _normalize(g.means.new_tensor(light_dir))
    factor = ambient + (1.0 - ambient) * (_normalize(normals) @ light).clamp_min(0.0)  # [N]
    sh = g.sh.clone()
    sh[:, 0] = rgb_to_sh_dc(g.rgb() * factor[:, None])
    return g.replace(sh=sh)

"""Deterministic demo scenes: a static diorama and a short dynamic (4D) clip, built from Gaussians.

Coordinate frame (stored, what the viewer receives): **up is -y**, the
OpenCV world convention that Lyra's generated scenes use (their world is the
first camera's OpenCV frame: x right, y down, z forward). The ground is the
plane ``y = 0`` and objects stand at ``y < 0``; the scenes are about 2.4 units
across, centred on the origin. The "front" faces -z: a camera at
``DEMO_CAMERA_EYE`` looking at ``DEMO_CAMERA_TARGET`` with world up
``DEMO_UP`` (e.g. ``lyra.render.Camera.look_at(eye, target)``, whose default up
is -y) shows the scene upright. In a viser client use
``server.scene.set_up_direction("-y")``.

Objects are modelled in a y-up frame (:mod:`lyra.scene.procedural`) and turned
into the stored frame at the end by a 180-degree rotation about x
(``lyra.edit.ops.rotate``, which also rotates the view-dependent SH).

Static demo (~43k splats, SH degree 1): a checkered ground disc, a red
sphere, a gold torus with a view-dependent sheen (SH degree 1, so SH baking
is visible), three cubes, a leafy tree, a pine tree and ~60 floaters scattered
around for the floater-removal tool.

Dynamic demo (24 frames at 24 fps, ~12-15k splats per frame, SH degree 0, a
seamless loop): a ball that bounces, squashes and changes colour; a windmill
whose blades turn; a crystal that grows (its splat count grows with it); a
cube that orbits and spins.

``ensure_demo_scenes(cache_dir)`` builds both once (a PLY and a sequence
folder, written with ``lyra.scene.save``) and reuses them afterwards.

    python -m scenes.build_demo --out DIR [--force]
"""

from __future__ import annotations

import argparse
import colorsys
import contextlib
import math
import os
import sys
from pathlib import Path

import torch

from lyra.edit.ops import rotate
from lyra.scene import Gaussians, GaussianSequence, save
from lyra.scene import procedural as prim

DEMO_VERSION = 1  # bump when the scenes change so cached copies are rebuilt
DEMO_SEED = 0
DEMO_FPS = 24.0
DEMO_FRAMES = 24
DEMO_UP = (0.0, -1.0, 0.0)
DEMO_CAMERA_EYE = (0.0, -1.1, -2.4)
DEMO_CAMERA_TARGET = (0.0, -0.25, 0.0)

# Model frame (y up) -> stored frame (y down): 180 degrees about x.
_MODEL_TO_STORED_WXYZ = (0.0, 1.0, 0.0, 0.0)


@contextlib.contextmanager
def _single_threaded_torch():
    """Run torch single-threaded for the duration, then restore the thread count.

    The builders issue thousands of small tensor ops (a few hundred rows each).
    With intra-op threads on a busy machine each tiny MKL/OpenMP call can wait
    milliseconds for its worker threads: measured 49 s instead of 2 s for the
    dynamic demo on a loaded 2-core machine (0.5 s unloaded either way). The
    setting is process-wide, so other torch work in the process runs
    single-threaded during the (about one second) build.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _to_stored_frame(g: Gaussians) -> Gaussians:
    return rotate(g, torch.ones(len(g), dtype=torch.bool), _MODEL_TO_STORED_WXYZ, (0.0, 0.0, 0.0))


def _vec(*xyz: float) -> torch.Tensor:
    return torch.tensor(xyz, dtype=torch.float32)


def _checker_ground(radius: float, square: float, light, dark):
    """Checkerboard colours darkening towards the rim."""

    def color(p: torch.Tensor) -> torch.Tensor:
        cells = torch.floor(p[:, 0] / square) + torch.floor(p[:, 2] / square)
        is_light = (cells.remainder(2) == 0)[:, None]
        rgb = torch.where(is_light, p.new_tensor(light), p.new_tensor(dark))
        rim = 1.0 - 0.35 * (p[:, [0, 2]].norm(dim=-1) / radius).square()
        return rgb * rim[:, None]

    return color


def _vertical_gradient(bottom, top, y0: float, y1: float):
    def color(p: torch.Tensor) -> torch.Tensor:
        f = ((p[:, 1] - y0) / (y1 - y0)).clamp(0, 1)[:, None]
        return p.new_tensor(bottom) * (1 - f) + p.new_tensor(top) * f

    return color


def _speckled(rgb, amount: float, gen: torch.Generator):
    def color(p: torch.Tensor) -> torch.Tensor:
        noise = (torch.rand(len(p), 1, generator=gen) - 0.5) * 2 * amount
        return p.new_tensor(rgb) * (1 + noise)

    return color


def _rotated(g: Gaussians, axis: tuple[float, float, float], angle: float, pivot) -> Gaussians:
    half = 0.5 * angle
    norm = math.sqrt(sum(a * a for a in axis))
    wxyz = (math.cos(half), *(math.sin(half) * a / norm for a in axis))
    return rotate(g, torch.ones(len(g), dtype=torch.bool), wxyz, pivot)


def _floaters(count: int, gen: torch.Generator) -> Gaussians:
    """Isolated specks in a shell around the diorama (what "remove floaters" should find)."""
    direction = torch.nn.functional.normalize(torch.randn(count, 3, generator=gen), dim=-1)
    direction[:, 1] = direction[:, 1].abs() * 0.8 + 0.1  # above the ground
    direction = torch.nn.functional.normalize(direction, dim=-1)
    radius = 1.5 + 0.8 * torch.rand(count, 1, generator=gen)
    points = direction * radius
    quats = torch.nn.functional.normalize(torch.randn(count, 4, generator=gen), dim=-1)
    scales = 0.008 + 0.022 * torch.rand(count, 3, generator=gen)
    opacity = 0.5 + 0.4 * torch.rand(count, generator=gen)
    rgb = 0.3 + 0.6 * torch.rand(count, 3, generator=gen)
    return Gaussians.from_rgb(points, quats, scales, opacity, rgb)


# ------------------------------------------------------------------- static
@_single_threaded_torch()
def build_static_demo(seed: int = DEMO_SEED) -> Gaussians:
    """The static diorama (see the module docstring); same seed -> identical tensors."""
    gen = torch.Generator().manual_seed(seed)
    ground = prim.disc(1.2, 14000, _checker_ground(1.2, 0.2, (0.92, 0.88, 0.80), (0.50, 0.62, 0.58)), gen)
    ball = prim.sphere(
        _vec(-0.45, 0.25, 0.2), 0.25, 6000, _vertical_gradient((0.75, 0.10, 0.12), (0.98, 0.40, 0.30), 0.0, 0.5)
    )
    ring = prim.torus(_vec(0, 0, 0), 0.2, 0.075, 7000, prim.solid((0.80, 0.60, 0.18)))
    ring = _rotated(_rotated(ring, (1, 0, 0), math.radians(80), (0, 0, 0)), (0, 1, 0), math.radians(30), (0, 0, 0))
    ring = ring.replace(means=ring.means + _vec(0.4, 0.29, -0.1))
    ring = prim.view_dependent_sheen(prim.lit(ring), light_dir=(0.4, 1.0, 0.5), strength=0.35)
    cubes = [
        prim.box(_vec(0.05, 0.12, 0.5), _vec(0.12, 0.12, 0.12), 0.5, 400, prim.solid((0.20, 0.35, 0.85))),
        prim.box(_vec(0.05, 0.32, 0.5), _vec(0.08, 0.08, 0.08), 1.1, 250, prim.solid((0.25, 0.75, 0.35))),
        prim.box(_vec(0.65, 0.09, 0.4), _vec(0.09, 0.09, 0.09), -0.3, 250, prim.solid((0.95, 0.80, 0.20))),
    ]
    trunk = prim.cylinder(_vec(-0.55, 0, -0.55), 0.04, 0.42, 900, prim.solid((0.42, 0.27, 0.15)))
    crown = _vec(-0.55, 0.58, -0.55)
    leaves = prim.blob(crown, _vec(0.24, 0.26, 0.24), 5000, _speckled((0.30, 0.62, 0.22), 0.25, gen), gen, 0.018)
    leaves = prim.lit(leaves, normals=leaves.means - crown)
    pine_trunk = prim.cylinder(_vec(0.8, 0, -0.6), 0.03, 0.12, 300, prim.solid((0.38, 0.25, 0.14)))
    pine = prim.cone(
        _vec(0.8, 0.1, -0.6), 0.16, 0.5, 2200, _vertical_gradient((0.08, 0.32, 0.16), (0.20, 0.55, 0.30), 0.1, 0.6)
    )
    floaters = _floaters(60, gen)
    solids = [prim.lit(part) for part in (ball, *cubes, trunk, pine_trunk, pine)]
    scene = Gaussians.cat([ground, *solids, ring, leaves, floaters])
    return _to_stored_frame(scene)


# ------------------------------------------------------------------ dynamic
def _hue(h: float, s: float = 0.75, v: float = 0.95) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, s, v)


def _bouncing_ball(phase: float) -> Gaussians:
    radius, rest, jump = 0.15, 0.15, 0.55
    height = rest + jump * math.sin(math.pi * phase)  # touches the ground at phase 0 (and 1)
    squash = 1.0 - 0.25 * max(0.0, 1.0 - (height - rest) / 0.08)
    ball = prim.sphere(_vec(0, 0, 0), radius, 2500, prim.solid(_hue(phase)))
    stretch = _vec(1 / math.sqrt(squash), squash, 1 / math.sqrt(squash))
    center = _vec(-0.5, radius * squash + (height - rest), 0.2)
    return ball.replace(means=ball.means * stretch + center)


def _windmill(phase: float) -> Gaussians:
    base, hub_height = _vec(0.5, 0, -0.25), 0.75
    hub = base + _vec(0, hub_height, 0.05)
    parts = [
        prim.cylinder(base, 0.03, hub_height, 700, prim.solid((0.75, 0.75, 0.78))),
        prim.sphere(hub, 0.05, 300, prim.solid((0.3, 0.3, 0.32))),
    ]
    turn = math.pi * phase  # half a turn per loop: seamless with four blades
    for i in range(4):
        colour = (0.95, 0.95, 0.95) if i % 2 == 0 else (0.85, 0.15, 0.15)
        blade = prim.box(_vec(0, 0.2, 0), _vec(0.035, 0.15, 0.008), 0.0, 150, prim.solid(colour))
        blade = _rotated(blade, (0, 0, 1), turn + i * math.pi / 2, (0, 0, 0))
        parts.append(blade.replace(means=blade.means + hub + _vec(0, 0, 0.03)))
    return Gaussians.cat(parts)


def _growing_crystal(phase: float) -> Gaussians:
    height, radius = 0.08 + 0.42 * phase, 0.05 + 0.06 * phase
    count = int(400 + 2600 * phase)
    top = tuple(0.3 + 0.6 * c for c in _hue(0.5 + 0.3 * phase, 0.6, 1.0))
    bottom = _hue(0.5 + 0.3 * phase, 0.8, 0.6)
    return prim.cone(_vec(-0.1, 0, -0.4), radius, height, count, _vertical_gradient(bottom, top, 0.0, height))


def _orbiting_cube(phase: float) -> Gaussians:
    angle = 2 * math.pi * phase
    center = _vec(0.15 + 0.22 * math.cos(angle), 0.12, 0.35 + 0.22 * math.sin(angle))
    return prim.box(center, _vec(0.07, 0.07, 0.07), 2 * angle, 200, prim.solid((0.95, 0.70, 0.15)))


@_single_threaded_torch()
def build_dynamic_demo(num_frames: int = DEMO_FRAMES, fps: float = DEMO_FPS, seed: int = DEMO_SEED) -> GaussianSequence:
    """The dynamic clip (see the module docstring): ``num_frames`` frames forming a seamless loop."""
    gen = torch.Generator().manual_seed(seed)
    ground = prim.disc(1.0, 5000, _checker_ground(1.0, 0.25, (0.90, 0.90, 0.92), (0.55, 0.58, 0.70)), gen)
    frames = []
    for i in range(num_frames):
        phase = i / num_frames
        movers = [_bouncing_ball(phase), _windmill(phase), _growing_crystal(phase), _orbiting_cube(phase)]
        frame = Gaussians.cat([ground, *(prim.lit(part) for part in movers)])
        frames.append(_to_stored_frame(frame))
    return GaussianSequence(frames, fps=fps)


# -------------------------------------------------------------------- cache
def demo_paths(cache_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Where :func:`ensure_demo_scenes` keeps the static PLY and the dynamic sequence folder."""
    cache_dir = Path(cache_dir)
    return cache_dir / f"demo_static_v{DEMO_VERSION}.ply", cache_dir / f"demo_dynamic_v{DEMO_VERSION}"


def ensure_demo_scenes(cache_dir: str | os.PathLike, *, force: bool = False) -> tuple[Path, Path]:
    """Build the demo scenes into ``cache_dir`` unless already there; returns ``(static_ply, dynamic_dir)``.

    Writes go through ``lyra.scene.save`` (atomic), so an interrupted build
    leaves no half-written scene behind and the next call rebuilds it.
    """
    static_path, dynamic_path = demo_paths(cache_dir)
    if force or not static_path.is_file():
        save(build_static_demo(), static_path)
    if force or not dynamic_path.is_dir():
        save(build_dynamic_demo(), dynamic_path, format="sequence")
    return static_path, dynamic_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scenes.build_demo", description="Build the Lyra Studio demo scenes."
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write the demo scenes into")
    parser.add_argument("--force", action="store_true", help="rebuild even if the scenes are already there")
    args = parser.parse_args(argv)
    static_path, dynamic_path = ensure_demo_scenes(args.out, force=args.force)
    print(f"static demo:  {static_path}")
    print(f"dynamic demo: {dynamic_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

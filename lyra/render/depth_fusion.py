"""A mesh by fusing rendered depth maps (TSDF), the ``lyra mesh --from-depth`` mode.

The scene is rendered (our renderer, :func:`lyra.render.render`) from ``views`` cameras on two orbits
around it (30 degrees above and below its centre, so tops and bottoms are seen), depth and alpha per
pixel. Each view is fused into a truncated signed distance on the voxel grid of
:func:`lyra.scene.opacity_field.grid_for` (Curless & Levoy's running average, truncation ``3 voxels``):

* a pixel with alpha >= 0.5 gives ``sdf = depth - z`` for the voxels on its ray, fused where
  ``sdf > -truncation`` (in front of or just behind the surface);
* a pixel with alpha < 0.5 saw nothing: the voxels on its ray are free space (``+1``);
* a voxel that every view that sees it sees further behind the surface than the truncation is inside
  (``-1``); a voxel no view sees stays outside (``+1``).

Marching cubes (:func:`lyra.scene.mesh.surface_from_grid`) of ``-tsdf`` at 0 gives the surface; cleanup,
decimation and splat colours are those of :func:`lyra.scene.mesh.mesh_from_gaussians`.

Written in torch: no CPU TSDF library is kept on PyPI without a large native stack (Open3D's wheel is
hundreds of MB with a GUI stack; its TSDF is the only part we would use), and the fusion is a few lines
of vectorised projection.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lyra.progress import Progress, report, stages
from lyra.render.camera import Camera
from lyra.render.framing import frame_scene
from lyra.render.render import render
from lyra.render.trajectories import DEFAULT_FOV_Y, orbit
from lyra.scene.gaussians import Gaussians
from lyra.scene.opacity_field import DEFAULT_RESOLUTION, VoxelGrid, grid_for

DEFAULT_VIEWS = 24
DEFAULT_VIEW_SIZE = 256
_TRUNCATION_VOXELS = 3.0


def fusion_cameras(g: Gaussians, views: int = DEFAULT_VIEWS, size: int = DEFAULT_VIEW_SIZE) -> Camera:
    """``views`` cameras (at least 2) on two orbits, 30 degrees above and below the framed scene's centre."""
    framing = frame_scene(g, DEFAULT_FOV_Y)
    radius = framing.radius / math.tan(0.5 * DEFAULT_FOV_Y) * 1.1
    upper = max(1, views // 2)
    rings = [orbit(framing.center, radius, upper, elevation=math.radians(30.0), up=framing.up, fov_y=DEFAULT_FOV_Y,
                   width=size, height=size),
             orbit(framing.center, radius, max(1, views - upper), elevation=math.radians(-30.0), up=framing.up,
                   start_azimuth=math.pi / max(1, views - upper), fov_y=DEFAULT_FOV_Y, width=size, height=size)]
    return Camera.stack([cam for ring in rings for cam in ring])


def fuse_depth(
    g: Gaussians,
    voxel: float | None = None,
    *,
    views: int = DEFAULT_VIEWS,
    size: int = DEFAULT_VIEW_SIZE,
    resolution: int = DEFAULT_RESOLUTION,
    progress: Progress | None = None,
) -> VoxelGrid:
    """The fused TSDF, negated (``> 0`` inside, ``< 0`` outside, surface at 0) on the grid over ``g``."""
    origin, voxel, shape = grid_for(g, voxel, resolution)
    axes = [origin[k] + voxel * torch.arange(shape[k], dtype=torch.float32) for k in range(3)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)  # [M, 3]
    truncation = _TRUNCATION_VOXELS * voxel
    tsdf_sum = torch.zeros(len(points))
    weight = torch.zeros(len(points))
    seen = torch.zeros(len(points), dtype=torch.bool)  # some view sees the voxel in its image
    behind_only = torch.ones(len(points), dtype=torch.bool)  # and every such view sees it deep behind the surface
    cameras = fusion_cameras(g, views, size)
    for i, camera in enumerate(cameras):
        with torch.no_grad():
            out = render(g, camera, background=(0.0, 0.0, 0.0))
        w2c = camera.w2c().float()
        cam_points = points @ w2c[:3, :3].T + w2c[:3, 3]
        z = cam_points[:, 2]
        fx, fy, cx, cy = camera.intrinsics.float().tolist()
        u = (fx * cam_points[:, 0] / z.clamp(min=1e-6) + cx).floor().long()
        v = (fy * cam_points[:, 1] / z.clamp(min=1e-6) + cy).floor().long()
        visible = (z > 1e-6) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
        pixel = (v * camera.width + u)[visible]
        hit = out.alpha.reshape(-1)[pixel] >= 0.5
        depth = out.depth.reshape(-1)[pixel]
        sdf = torch.where(hit, depth - z[visible], torch.full_like(depth, truncation))  # a miss: free space
        fused = sdf > -truncation
        index = visible.nonzero().squeeze(1)
        tsdf_sum[index[fused]] += (sdf[fused] / truncation).clamp(-1.0, 1.0)
        weight[index[fused]] += 1.0
        seen[index] = True
        behind_only[index[fused]] = False
        report(progress, (i + 1) / len(cameras), f"fusing depth: view {i + 1}/{len(cameras)}")
    tsdf = torch.where(weight > 0, tsdf_sum / weight.clamp(min=1.0), torch.ones_like(weight))
    tsdf = torch.where(seen & behind_only, -torch.ones_like(tsdf), tsdf)
    return VoxelGrid((-tsdf).reshape(shape), origin, voxel)


def mesh_from_depth(
    g: Gaussians,
    voxel: float | None = None,
    *,
    views: int = DEFAULT_VIEWS,
    size: int = DEFAULT_VIEW_SIZE,
    max_faces: int | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    min_component_fraction: float = 0.005,
    progress: Progress | None = None,
):
    """A ``trimesh.Trimesh`` of ``g``'s rendered surface by TSDF fusion (module docstring), vertex colours
    from the splats. Raises InputDataError for an empty scene, a grid too fine, or no surface seen."""
    import trimesh

    from lyra.scene.mesh import decimate, drop_small_components, splat_colors, surface_from_grid

    g, _ = g.drop_invalid()
    fuse_progress, rest = stages(progress, [0.85, 0.15])
    grid = fuse_depth(g, voxel, views=views, size=size, resolution=resolution, progress=fuse_progress)
    report(rest, 0.0, "marching cubes")
    vertices, faces = surface_from_grid(grid, 0.0, fill_inside=False)
    mesh = drop_small_components(trimesh.Trimesh(vertices, faces, process=True), min_component_fraction)
    mesh = decimate(mesh, max_faces)
    mesh.visual.vertex_colors = splat_colors(g, np.asarray(mesh.vertices))
    report(progress, 1.0, f"{len(mesh.faces)} faces")
    return mesh

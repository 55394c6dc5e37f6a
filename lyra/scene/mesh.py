"""Triangle meshes and colliders from Gaussians: opacity field -> marching cubes -> cleanup -> decimation.

:func:`mesh_from_gaussians` is the one entry point for a visual mesh:

1. the opacity field on a voxel grid (:mod:`lyra.scene.opacity_field`, torch, chunked);
2. the inside filled: empty space not connected to the grid's border (the inside of a closed shell of
   splats, cavities) counts as solid, so a closed shape gives one outer surface, not an inner and an
   outer one, and the result is closed (the grid is padded with empty space);
3. marching cubes (scikit-image) at ``level`` (opacity, default 0.5);
4. components with fewer than ``min_component_fraction`` of the faces dropped (floaters);
5. quadric decimation to ``max_faces`` (trimesh + fast-simplification);
6. vertex colours from the splats: the opacity- and distance-weighted mean base colour (SH DC) of the
   nearest splats.

:func:`collider_from_gaussians` is a coarse, decimated, watertight-ish variant returned as plain
``(vertices [V, 3] float32, faces [F, 3] int32)`` arrays (what a USD or physics writer embeds).
:func:`write_mesh` writes ``.ply``, ``.obj`` or ``.glb`` atomically. Positions stay in the scene's frame
and units.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import torch

from lyra.errors import InputDataError, SceneFileError
from lyra.fileio import atomic_write
from lyra.progress import Progress, report, stages
from lyra.scene.gaussians import Gaussians
from lyra.scene.opacity_field import DEFAULT_RESOLUTION, VoxelGrid, opacity_field

MESH_SUFFIXES = {".ply": "ply", ".obj": "obj", ".glb": "glb"}
DEFAULT_LEVEL = 0.5
COLLIDER_RESOLUTION = 64
COLLIDER_FACES = 2000
_COLOR_NEIGHBOURS = 8


def surface_from_grid(
    grid: VoxelGrid, level: float = DEFAULT_LEVEL, *, fill_inside: bool = True
) -> tuple[np.ndarray, np.ndarray]:  # ([V, 3] float32 world, [F, 3] int64)
    """Marching cubes of ``grid`` at ``level``, closed at the grid's border; InputDataError if nothing reaches it.

    ``fill_inside``: empty space that the border cannot reach is solid (see the module docstring).
    Faces wind counter-clockwise seen from outside (normals point to lower values, a closed mesh has positive volume).
    """
    from scipy import ndimage
    from skimage.measure import marching_cubes

    # An empty border (below the level) closes every surface.
    values = np.pad(grid.values.numpy(), 1, constant_values=0.0 if level > 0 else level - 1.0)
    if not values.max() >= level:
        raise InputDataError(f"no surface: the opacity field peaks at {values.max():.3g}, below the level {level:g} "
                             "(lower --level, or the scene is too sparse for this voxel size)")
    if fill_inside:
        labels, _ = ndimage.label(values < level)  # 6-connected empty regions
        enclosed = (labels != labels[0, 0, 0]) & (values < level)
        values = np.where(enclosed, np.float32(2.0 * level), values)
    vertices, faces, _, _ = marching_cubes(values, level, spacing=(grid.voxel,) * 3, allow_degenerate=False)
    vertices = vertices + (grid.origin.numpy() - grid.voxel)  # undo the padding
    # scikit-image winds faces clockwise seen from the lower values; reversed, normals point out of the solid.
    return vertices.astype(np.float32), np.ascontiguousarray(faces[:, ::-1]).astype(np.int64)


def drop_small_components(mesh, min_component_fraction: float):
    """``mesh`` without the connected pieces holding fewer than ``min_component_fraction`` of its faces
    (the largest piece is always kept)."""
    import trimesh

    if len(mesh.faces) == 0:
        return mesh
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    sizes = np.bincount(labels)
    keep_labels = (sizes >= min_component_fraction * len(mesh.faces)) | (sizes == sizes.max())
    mesh.update_faces(keep_labels[labels])
    mesh.remove_unreferenced_vertices()
    return mesh


def decimate(mesh, max_faces: int | None):
    """``mesh`` decimated (quadric error, fast-simplification through trimesh) to at most ``max_faces``."""
    if max_faces is None or len(mesh.faces) <= max_faces:
        return mesh
    if max_faces < 4:
        raise InputDataError(f"--faces: a mesh needs at least 4 faces, found {max_faces}")
    return mesh.simplify_quadric_decimation(face_count=int(max_faces))


def splat_colors(g: Gaussians, points: np.ndarray) -> np.ndarray:  # [M, 3] -> [M, 4] uint8 RGBA
    """Colour at each point: the mean base colour (SH DC, clamped to 0..1) of its nearest visible splats,
    weighted by opacity and by ``exp(-d^2 / (2 s^2))`` with ``s`` the splat's largest scale."""
    from scipy.spatial import cKDTree

    visible = g.opacities.detach() >= 0.05
    if not visible.any():
        visible = torch.ones_like(visible)
    means = g.means.detach().float()[visible].numpy()
    rgb = g.rgb().detach().float()[visible].clamp(0, 1).numpy()
    opacity = g.opacities.detach().float()[visible].numpy()
    size = g.scales.detach().float()[visible].max(dim=1).values.clamp(min=1e-6).numpy()
    k = min(_COLOR_NEIGHBOURS, len(means))
    distance, nearest = cKDTree(means).query(points, k=k)
    distance, nearest = distance.reshape(len(points), k), nearest.reshape(len(points), k)
    weight = opacity[nearest] * np.exp(-0.5 * (distance / size[nearest]) ** 2) + 1e-12
    color = (weight[..., None] * rgb[nearest]).sum(1) / weight.sum(1, keepdims=True)
    rgba = np.full((len(points), 4), 255, dtype=np.uint8)
    rgba[:, :3] = np.clip(np.round(color * 255.0), 0, 255).astype(np.uint8)
    return rgba


def mesh_from_gaussians(
    g: Gaussians,
    voxel: float | None = None,
    *,
    max_faces: int | None = None,
    level: float = DEFAULT_LEVEL,
    resolution: int = DEFAULT_RESOLUTION,
    min_component_fraction: float = 0.005,
    colors: bool = True,
    progress: Progress | None = None,
):
    """A ``trimesh.Trimesh`` of the surface of ``g`` (see the module docstring), vertex colours included.

    ``voxel``: grid edge (world units; default longest side / ``resolution``). ``max_faces``: decimate to
    at most this many faces. Splats with NaN/Inf values are ignored. Raises InputDataError for an empty
    scene, a non-positive level, a grid too fine, or no surface.
    """
    import trimesh

    if not (math.isfinite(level) and level > 0):
        raise InputDataError(f"level: expected a positive opacity, found {level}")
    g, _ = g.drop_invalid()
    field_progress, surface_progress, color_progress = stages(progress, [0.7, 0.2, 0.1])
    grid = opacity_field(g, voxel, resolution=resolution, progress=field_progress)
    report(surface_progress, 0.0, "marching cubes")
    vertices, faces = surface_from_grid(grid, level)
    mesh = trimesh.Trimesh(vertices, faces, process=True)
    mesh = drop_small_components(mesh, min_component_fraction)
    report(surface_progress, 0.5, f"decimating {len(mesh.faces)} faces")
    mesh = decimate(mesh, max_faces)
    if colors:
        report(color_progress, 0.0, "vertex colours")
        mesh.visual.vertex_colors = splat_colors(g, np.asarray(mesh.vertices))
    report(progress, 1.0, f"{len(mesh.faces)} faces")
    return mesh


def collider_from_gaussians(
    g: Gaussians,
    *,
    max_faces: int = COLLIDER_FACES,
    resolution: int = COLLIDER_RESOLUTION,
    level: float = DEFAULT_LEVEL,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # ([V, 3] float32, [F, 3] int32)
    """A simplified collision mesh of ``g``: a coarse grid (``resolution`` voxels along the longest side),
    the inside filled, floaters dropped, decimated to ``max_faces``; holes left by decimation are filled
    where trimesh can. Plain arrays, so a USD or physics writer needs no trimesh."""
    import trimesh

    mesh = mesh_from_gaussians(g, None, max_faces=max_faces, level=level, resolution=resolution,
                               min_component_fraction=0.02, colors=False, progress=progress)
    mesh.merge_vertices()
    trimesh.repair.fill_holes(mesh)
    trimesh.repair.fix_normals(mesh)
    return np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.int32)


def scene_collider(scene, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The collider a USD export embeds (``lyra convert --collider``, the Export panel): of a static scene, or
    of a clip's first frame (one collider for the clip's prim; Isaac Sim collides with a static mesh)."""
    from lyra.scene.sequence import GaussianSequence

    frame = scene.frames[0] if isinstance(scene, GaussianSequence) else scene
    return collider_from_gaussians(frame, progress=progress)


def mesh_format(path: str | os.PathLike) -> str:
    """``"ply" | "obj" | "glb"`` from ``path``'s ending; InputDataError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise InputDataError(f"a mesh is written as {', '.join(MESH_SUFFIXES)}; found {Path(path).name!r}")
    return MESH_SUFFIXES[suffix]


def write_mesh(mesh, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``mesh`` (a trimesh) as PLY (binary), OBJ or GLB by ``path``'s ending, atomically.

    Without ``overwrite`` an existing ``path`` is never replaced (SceneFileError).
    """
    path = Path(path)
    fmt = mesh_format(path)
    buffer = io.BytesIO()
    mesh.export(buffer, file_type=fmt)
    try:
        with atomic_write(path, overwrite=overwrite) as handle:
            handle.write(buffer.getvalue())
    except FileExistsError:
        raise SceneFileError(path, "a new path (or overwrite)", "an existing file") from None
    return path

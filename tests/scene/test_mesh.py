"""Meshes and colliders from Gaussians (lyra.scene.mesh, lyra.scene.opacity_field): known shapes, files, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from lyra.errors import InputDataError, SceneFileError
from lyra.scene import Gaussians
from lyra.scene.mesh import collider_from_gaussians, mesh_from_gaussians, write_mesh
from lyra.scene.opacity_field import grid_for, opacity_field
from lyra.scene.procedural import box, sphere

RADIUS = 1.0
HALF = torch.tensor([0.6, 0.4, 0.5])
GREY = lambda p: torch.full_like(p, 0.5)  # noqa: E731


def two_tone(points):  # red above y = 0, blue below
    rgb = torch.zeros_like(points)
    rgb[:, 0] = (points[:, 1] > 0).float()
    rgb[:, 2] = (points[:, 1] <= 0).float()
    return rgb


@pytest.fixture(scope="module")
def sphere_shell():
    return sphere(torch.zeros(3), RADIUS, 6000, two_tone)


@pytest.fixture(scope="module")
def sphere_mesh(sphere_shell):
    return mesh_from_gaussians(sphere_shell, resolution=80)


def box_distance(points: np.ndarray) -> np.ndarray:
    """Distance of each point to the surface of the box with half extents HALF at the origin."""
    q = np.abs(points) - HALF.numpy()
    outside = np.linalg.norm(np.maximum(q, 0), axis=1)
    inside = np.minimum(q.max(axis=1), 0)
    return np.abs(outside + inside)


def chamfer(mesh, true_points: np.ndarray, distance_to_truth) -> float:
    """Symmetric mean distance: mesh samples to the true surface, true samples to the mesh samples."""
    samples, _ = trimesh.sample.sample_surface_even(mesh, 20000, seed=0)
    forward = distance_to_truth(samples).mean()
    backward = cKDTree(samples).query(true_points)[0].mean()
    return 0.5 * float(forward + backward)


def sphere_points(n=5000) -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(n, 3))
    return RADIUS * v / np.linalg.norm(v, axis=1, keepdims=True)


def test_sphere_shell_mesh_is_close_to_the_sphere_and_closed(sphere_shell, sphere_mesh):
    error = chamfer(sphere_mesh, sphere_points(), lambda p: np.abs(np.linalg.norm(p, axis=1) - RADIUS))
    voxel = grid_for(sphere_shell, resolution=80)[1]
    assert error < 1.5 * voxel and error < 0.05 * RADIUS  # the level set sits about a voxel out of the splats
    assert sphere_mesh.is_watertight
    assert sphere_mesh.volume == pytest.approx(4 / 3 * math.pi * RADIUS**3, rel=0.12)  # positive: normals point out


def test_a_closed_shell_gives_one_outer_surface_not_an_inner_one_too(sphere_mesh):
    radii = np.linalg.norm(sphere_mesh.vertices, axis=1)
    assert radii.min() > 0.95 * RADIUS  # the inside of the shell is filled
    assert len(trimesh.graph.connected_components(sphere_mesh.face_adjacency)) == 1


def test_box_mesh_is_close_to_the_box_and_closed():
    shell = box(torch.zeros(3), HALF, 0.0, 1500, GREY)
    mesh = mesh_from_gaussians(shell, resolution=80)
    grid = np.stack(np.meshgrid(*[np.linspace(-h, h, 30) for h in HALF.numpy()], indexing="ij"), -1).reshape(-1, 3)
    true_points = grid[np.isclose(box_distance(grid), 0, atol=1e-6)]
    voxel = grid_for(shell, resolution=80)[1]
    assert chamfer(mesh, true_points, box_distance) < 1.5 * voxel
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(float(HALF.prod() * 8), rel=0.15)


def test_decimation_keeps_the_shape_within_the_face_budget(sphere_shell, sphere_mesh):
    small = mesh_from_gaussians(sphere_shell, resolution=80, max_faces=800)
    assert 400 <= len(small.faces) <= 800 < len(sphere_mesh.faces)
    assert np.abs(np.linalg.norm(small.vertices, axis=1) - RADIUS).max() < 0.06


def test_vertex_colours_come_from_the_nearest_splats(sphere_mesh):
    colors = np.asarray(sphere_mesh.visual.vertex_colors)
    y = np.asarray(sphere_mesh.vertices)[:, 1]
    top, bottom = colors[y > 0.3], colors[y < -0.3]
    assert (top[:, 0] > 200).all() and (top[:, 2] < 55).all()
    assert (bottom[:, 2] > 200).all() and (bottom[:, 0] < 55).all()


def test_small_floating_pieces_are_dropped(sphere_shell):
    # A blob in a corner of the shell's box (norm 1.56): inside the grid, apart from the sphere.
    floater = Gaussians.from_rgb(torch.tensor([[0.9, 0.9, 0.9]]), torch.tensor([[1.0, 0, 0, 0]]),
                                 torch.full((1, 3), 0.03), torch.tensor([0.9]), torch.ones(1, 3))
    mesh = mesh_from_gaussians(Gaussians.cat([sphere_shell, floater]), resolution=80)
    assert np.linalg.norm(mesh.vertices, axis=1).max() < 1.2
    kept = mesh_from_gaussians(Gaussians.cat([sphere_shell, floater]), resolution=80, min_component_fraction=0.0)
    assert np.linalg.norm(kept.vertices, axis=1).max() > 1.45


def test_collider_is_small_closed_and_plain_arrays(sphere_shell):
    vertices, faces = collider_from_gaussians(sphere_shell, max_faces=500)
    assert vertices.dtype == np.float32 and vertices.shape[1] == 3
    assert faces.dtype == np.int32 and faces.shape[1] == 3 and len(faces) <= 500
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight and mesh.volume > 0
    assert np.abs(np.linalg.norm(vertices, axis=1) - RADIUS).max() < 0.15


def test_opacity_field_does_not_depend_on_the_chunk_size(sphere_shell):
    whole = opacity_field(sphere_shell[:500], resolution=32)
    chunked = opacity_field(sphere_shell[:500], resolution=32, cells_per_chunk=5000)
    torch.testing.assert_close(chunked.values, whole.values, rtol=1e-5, atol=1e-6)


def test_opacity_field_peaks_at_an_isolated_splat_with_its_opacity():
    g = Gaussians.from_rgb(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), torch.tensor([[1.0, 0, 0, 0]] * 2),
                           torch.full((2, 3), 0.1), torch.tensor([0.7, 0.7]), torch.ones(2, 3))
    grid = opacity_field(g, voxel=0.05)
    index = ((torch.zeros(3) - grid.origin) / grid.voxel).round().long()
    assert float(grid.values[tuple(index)]) == pytest.approx(0.7, abs=0.02)


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".glb"])
def test_written_meshes_read_back_with_colours(tmp_path, sphere_mesh, suffix):
    path = write_mesh(sphere_mesh, tmp_path / f"m{suffix}")
    back = trimesh.load(path, force="mesh")
    assert len(back.faces) == len(sphere_mesh.faces)
    np.testing.assert_allclose(back.bounds, sphere_mesh.bounds, atol=1e-4)
    assert back.visual.kind == "vertex"


def test_write_mesh_never_replaces_without_overwrite(tmp_path, sphere_mesh):
    path = tmp_path / "m.ply"
    path.write_bytes(b"keep")
    with pytest.raises(SceneFileError):
        write_mesh(sphere_mesh, path)
    assert path.read_bytes() == b"keep"
    write_mesh(sphere_mesh, path, overwrite=True)
    assert len(trimesh.load(path).faces) == len(sphere_mesh.faces)


def test_unknown_mesh_suffix_is_refused(tmp_path, sphere_mesh):
    with pytest.raises(InputDataError, match=".ply"):
        write_mesh(sphere_mesh, tmp_path / "m.stl")


def test_empty_scene_too_fine_grid_and_no_surface_are_clear_errors(sphere_shell):
    with pytest.raises(InputDataError, match="empty"):
        mesh_from_gaussians(Gaussians.empty())
    with pytest.raises(InputDataError, match="voxel"):
        mesh_from_gaussians(sphere_shell, voxel=1e-4)
    faint = sphere_shell.replace(opacities=torch.full((len(sphere_shell),), 0.02))
    with pytest.raises(InputDataError, match="no surface"):
        mesh_from_gaussians(faint, resolution=32)


def test_opacity_field_matches_the_gaussian_formula_for_a_rotated_splat():
    quat = torch.nn.functional.normalize(torch.tensor([[0.9, 0.3, -0.2, 0.25]]), dim=1)
    g = Gaussians.from_rgb(torch.tensor([[0.013, -0.021, 0.007]]), quat, torch.tensor([[0.15, 0.08, 0.02]]),
                           torch.tensor([0.8]), torch.ones(1, 3))
    grid = opacity_field(g, voxel=0.04)
    index = torch.stack(torch.meshgrid(*[torch.arange(n) for n in grid.values.shape], indexing="ij"), -1)
    d = grid.world_points(index.reshape(-1, 3).float()) - g.means
    widened = g.covariances()[0] + 0.02**2 * torch.eye(3)  # (voxel / 2)^2
    expected = 0.8 * torch.exp(-0.5 * ((d @ torch.linalg.inv(widened)) * d).sum(-1))
    near = expected > 0.02  # within the 3-sigma ball each splat is evaluated in (12 voxels, under the cap)
    assert near.sum() > 50
    torch.testing.assert_close(grid.values.reshape(-1)[near], expected[near], rtol=1e-4, atol=1e-5)


def test_nan_splats_are_ignored_and_a_bad_level_refused(sphere_shell):
    broken = sphere_shell.clone()
    broken.means[:5] = float("nan")
    broken.scales[5:10] = float("inf")
    mesh = mesh_from_gaussians(broken, resolution=48)
    assert mesh.is_watertight and np.isfinite(mesh.vertices).all()
    for level in (0.0, -1.0, float("nan")):
        with pytest.raises(InputDataError, match="level"):
            mesh_from_gaussians(sphere_shell, resolution=32, level=level)

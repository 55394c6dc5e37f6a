"""The Export panel's glTF and USD(Z) paths: whole clips, the frame shown now, names, progress and cancel."""

from __future__ import annotations

import pytest

from lyra.errors import SceneFileError
from lyra.progress import Cancelled
from lyra.scene import GaussianSequence, load
from viewer.export import export_bytes, export_to_server, resolve_export_path


def test_usd_endings_are_kept_and_others_replaced(tmp_path):
    root = tmp_path.resolve()
    assert resolve_export_path(root, "scene", "usd").name == "scene.usdz"
    assert resolve_export_path(root, "scene.usda", "usd").name == "scene.usda"
    assert resolve_export_path(root, "scene.ply", "usd").name == "scene.usdz"
    assert resolve_export_path(root, "scene.usdz", "gltf").name == "scene.glb"


def test_a_clip_exports_to_usdz_with_every_frame_and_reports_progress(app, make_gaussians):
    clip = GaussianSequence([make_gaussians(30 + i, seed=i) for i in range(3)], fps=8)
    app.state.add_scene(clip, "clip")
    seen = []
    path = export_to_server(app.state, None, app.output_dir, "clip", "usd", progress=lambda f, t: seen.append(f))
    loaded = load(path)
    assert path.suffix == ".usdz" and isinstance(loaded, GaussianSequence) and len(loaded) == 3 and loaded.fps == 8
    assert all(a.equal(b, atol=1e-5) for a, b in zip(loaded.frames, clip.frames, strict=True))
    assert seen == sorted(seen) and len(seen) >= 4 and seen[-1] == 1.0


def test_a_clip_exports_to_a_folder_of_glb_frames(app, make_gaussians):
    app.state.add_scene(GaussianSequence([make_gaussians(20, seed=i) for i in range(2)]), "clip")
    folder = export_to_server(app.state, None, app.output_dir, "frames", "sequence-glb")
    assert sorted(p.name for p in folder.iterdir()) == ["frame_00000.glb", "frame_00001.glb", "manifest.json"]
    assert len(load(folder)) == 2


def test_glb_of_a_clip_is_the_frame_shown_now(app, make_gaussians):
    clip = GaussianSequence([make_gaussians(20 + i, seed=i) for i in range(3)])
    app.state.add_scene(clip, "clip")
    path = export_to_server(app.state, None, app.output_dir, "clip", "gltf")
    assert path.name == "clip_frame0000.glb" and load(path).equal(clip.frames[0], atol=1e-6)


def test_a_static_scene_downloads_as_one_usdz_file(app, make_gaussians, tmp_path):
    g = make_gaussians(40, sh_degree=1)
    app.state.add_scene(g, "static")
    name, content = export_bytes(app.state, None, "static", "usd")
    assert name == "static.usdz" and content[:2] == b"PK"
    (tmp_path / name).write_bytes(content)
    assert load(tmp_path / name).equal(g, atol=1e-5)


def test_cancelling_an_export_leaves_nothing_behind(app, make_gaussians):
    app.state.add_scene(GaussianSequence([make_gaussians(20, seed=i) for i in range(3)]), "clip")

    def cancel_midway(fraction, text):
        if fraction > 0.3:
            raise Cancelled("cancelled")

    with pytest.raises(Cancelled):
        export_to_server(app.state, None, app.output_dir, "clip", "usd", progress=cancel_midway)
    assert not any(app.output_dir.rglob("clip*"))


def _sphere_shell():
    import torch

    from lyra.scene.procedural import solid, sphere

    return sphere(torch.tensor([0.0, 0.0, 3.0]), 0.5, 3000, solid((0.8, 0.2, 0.2)))


def _collider_points(path):
    """The collider mesh's points (stage frame); asserts it is one invisible physics mesh."""
    import numpy as np
    from pxr import Usd, UsdGeom, UsdPhysics

    stage = Usd.Stage.Open(str(path))
    meshes = [p for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    assert len(meshes) == 1
    mesh = meshes[0]
    assert mesh.HasAPI(UsdPhysics.CollisionAPI) and mesh.HasAPI(UsdPhysics.MeshCollisionAPI)
    assert UsdGeom.Imageable(mesh).ComputeVisibility() == UsdGeom.Tokens.invisible
    return np.asarray(UsdGeom.Mesh(mesh).GetPointsAttr().Get())  # read while the stage is alive


@pytest.mark.slow
def test_usd_export_with_a_collider_from_the_panel_path_and_from_lyra_convert(app, tmp_path):
    """Issue 18: a USD(Z) with a collider, from the Export panel's path and from the CLI."""
    import numpy as np

    from lyra.cli import main
    from lyra.scene import save

    shell = _sphere_shell()
    app.state.add_scene(shell, "ball")
    path = export_to_server(app.state, None, app.output_dir, "ball", "usd", collider=True)
    points = _collider_points(path)
    radii = np.linalg.norm(points * [-1, -1, 1] - [0.0, 0.0, 3.0], axis=1)  # the stage is Y-up: x, y turned back
    assert len(points) > 8 and 0.35 < np.median(radii) < 0.7  # the collider hugs the 0.5 sphere
    assert len(load(path)) == len(shell)
    with pytest.raises(SceneFileError):
        export_to_server(app.state, None, app.output_dir, "ball", "gltf", collider=True)

    save(shell, tmp_path / "ball.ply")
    assert main(["convert", str(tmp_path / "ball.ply"), str(tmp_path / "ball.usda"), "--collider"]) == 0
    assert len(_collider_points(tmp_path / "ball.usda")) > 8
    assert main(["convert", str(tmp_path / "ball.ply"), str(tmp_path / "ball.glb"), "--collider"]) == 1
    assert not (tmp_path / "ball.glb").exists()

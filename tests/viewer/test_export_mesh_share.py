"""The Export panel's "Mesh / collider" and "Share page" actions: jobs, confined to the output folder, atomic."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import trimesh

from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence
from lyra.scene.procedural import sphere
from viewer.export import mesh_to_server, share_page_to_server

GREY = lambda p: torch.full_like(p, 0.5)  # noqa: E731
CLIENT = SimpleNamespace(add_notification=lambda *a, **k: None)


def click(app, button_handler):
    button_handler(SimpleNamespace(client=CLIENT))
    job = app.jobs[-1]
    assert job.wait(300)
    return job


def files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_mesh_button_writes_a_mesh_in_the_output_folder(app):
    app.state.add_scene(sphere(torch.zeros(3), 1.0, 2000, GREY), "ball")
    panel = app.panel("export")
    panel.name.value, panel.mesh_format.value, panel.mesh_faces.value = "ball", ".glb", 500
    job = click(app, panel._mesh)
    assert job.status == "done", job.error
    assert files(app.output_dir) == ["ball.glb"]
    mesh = trimesh.load(app.output_dir / "ball.glb", force="mesh")
    assert len(mesh.faces) <= 500 and mesh.is_watertight


def test_collider_of_a_4d_layer_takes_the_frame_shown_and_names_it(app):
    clip = GaussianSequence([sphere(torch.zeros(3), r, 800, GREY) for r in (0.5, 1.0)], fps=4)
    app.state.add_scene(clip, "clip")
    assert app.state.set_frame(1) == 1
    path = mesh_to_server(app.state, "clip", app.output_dir, "c.obj", ".obj", collider=True, max_faces=300)
    assert path.name == "c_frame0001.obj"
    collider = trimesh.load(path, force="mesh")
    assert len(collider.faces) <= 300 and collider.bounds.max() > 0.8  # the large sphere of frame 1


def test_mesh_and_share_refuse_names_outside_the_output_folder(app, tmp_path):
    app.state.add_scene(sphere(torch.zeros(3), 1.0, 300, GREY), "ball")
    for hostile in ("../escape", "/tmp/abs", "a/../../x"):
        with pytest.raises(SceneFileError):
            mesh_to_server(app.state, None, app.output_dir, hostile)
        with pytest.raises(SceneFileError):
            share_page_to_server(app.state, None, app.output_dir, hostile)
    assert not (tmp_path / "escape.ply").exists() and not (tmp_path / "escape.html").exists()


def test_share_button_writes_one_page_and_never_overwrites_unasked(app):
    app.state.add_scene(sphere(torch.zeros(3), 1.0, 1000, GREY, sh_degree=1), "ball")
    panel = app.panel("export")
    panel.name.value = "page"
    job = click(app, panel._share)
    assert job.status == "done", job.error
    assert files(app.output_dir) == ["page.html"] and "baked" in job.result
    first = (app.output_dir / "page.html").read_bytes()
    job = click(app, panel._share)
    assert job.status == "failed" and "exist" in job.error
    assert (app.output_dir / "page.html").read_bytes() == first


def test_cancelled_mesh_job_leaves_nothing(app):
    app.state.add_scene(sphere(torch.zeros(3), 1.0, 4000, GREY), "ball")
    panel = app.panel("export")
    panel.name.value = "cancelled"
    panel._mesh(SimpleNamespace(client=CLIENT))
    job = app.jobs[-1]
    job.cancel()
    assert job.wait(300) and job.status == "cancelled"
    assert not app.output_dir.exists() or files(app.output_dir) == []

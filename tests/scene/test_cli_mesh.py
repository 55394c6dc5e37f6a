"""``lyra mesh`` through the CLI entry point: the files it writes, frames of a 4D scene, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from lyra.cli import main
from lyra.scene import GaussianSequence, save
from lyra.scene.procedural import sphere

GREY = lambda p: torch.full_like(p, 0.5)  # noqa: E731


@pytest.fixture(scope="module")
def sphere_ply(tmp_path_factory):
    path = tmp_path_factory.mktemp("mesh-cli") / "sphere.ply"
    save(sphere(torch.zeros(3), 1.0, 3000, GREY), path)
    return path


def test_mesh_writes_a_ply_that_trimesh_reads(tmp_path, sphere_ply, capsys):
    out = tmp_path / "mesh.ply"
    assert main(["mesh", str(sphere_ply), "--out", str(out), "--resolution", "48", "--no-progress"]) == 0
    mesh = trimesh.load(out)
    assert isinstance(mesh, trimesh.Trimesh) and mesh.is_watertight
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 1.0).max() < 0.12
    assert f"wrote {out}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mesh.ply"]  # no temporaries left


def test_mesh_faces_and_collider_options(tmp_path, sphere_ply):
    assert main(["mesh", str(sphere_ply), "--out", str(tmp_path / "m.glb"), "--resolution", "48",
                 "--faces", "300", "--no-progress"]) == 0
    assert len(trimesh.load(tmp_path / "m.glb", force="mesh").faces) <= 300
    assert main(["mesh", str(sphere_ply), "--out", str(tmp_path / "c.obj"), "--collider", "--faces", "200",
                 "--no-progress"]) == 0
    collider = trimesh.load(tmp_path / "c.obj", force="mesh")
    assert len(collider.faces) <= 200 and collider.is_watertight


def test_mesh_never_replaces_a_file_without_overwrite(tmp_path, sphere_ply, capsys):
    out = tmp_path / "mesh.ply"
    out.write_bytes(b"keep")
    assert main(["mesh", str(sphere_ply), "--out", str(out), "--resolution", "32", "--no-progress"]) == 1
    assert "exist" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(["mesh", str(sphere_ply), "--out", str(out), "--resolution", "32", "--overwrite", "--no-progress"]) == 0
    assert len(trimesh.load(out).faces) > 100


def test_mesh_of_a_4d_scene_writes_one_file_per_chosen_frame(tmp_path):
    clip = GaussianSequence([sphere(torch.zeros(3), r, 1500, GREY) for r in (0.5, 1.0, 1.5)], fps=10)
    save(clip, tmp_path / "clip")
    out = tmp_path / "out" / "m.ply"
    assert main(["mesh", str(tmp_path / "clip"), "--out", str(out), "--frames", "0,2", "--resolution", "32",
                 "--no-progress"]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["m_frame0000.ply", "m_frame0002.ply"]
    radius = [np.linalg.norm(trimesh.load(out.parent / n).vertices, axis=1).mean()
              for n in ("m_frame0000.ply", "m_frame0002.ply")]
    assert radius[0] == pytest.approx(0.5, rel=0.15) and radius[1] == pytest.approx(1.5, rel=0.15)


@pytest.mark.parametrize(("args", "message"), [
    (["--out", "x.stl"], ".ply"),
    (["--out", "x.ply", "--voxel", "-1"], "--voxel"),
    (["--out", "x.ply", "--faces", "2"], "--faces"),
    (["--out", "x.ply", "--voxel", "0.0001"], "voxel"),
    (["--out", "x.ply", "--collider", "--from-depth"], "choose one"),
])
def test_mesh_refuses_bad_arguments_with_a_message(tmp_path, sphere_ply, capsys, args, message):
    args = [a if not a.startswith("x.") else str(tmp_path / a) for a in args]
    assert main(["mesh", str(sphere_ply), *args, "--no-progress"]) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_mesh_refuses_frames_outside_the_clip(tmp_path, capsys):
    save(GaussianSequence([sphere(torch.zeros(3), 1.0, 500, GREY)] * 2, fps=10), tmp_path / "clip")
    assert main(["mesh", str(tmp_path / "clip"), "--out", str(tmp_path / "m.ply"), "--frames", "5"]) == 1
    assert "--frames" in capsys.readouterr().err

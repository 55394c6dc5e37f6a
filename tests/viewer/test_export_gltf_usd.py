"""The Export panel's glTF and USD(Z) paths: whole clips, the frame shown now, names, progress and cancel."""

from __future__ import annotations

import pytest

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

"""What a new user saw (issue 21, items 5 and 6), each as a behaviour: the Export layer, save
confirmations, Open refusals explained in the page, and the status line's "last:"."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from lyra.scene import load
from viewer.export import describe_size, written_bytes
from viewer.panels.status import status_line

CLIENT = SimpleNamespace(client=None)


@pytest.fixture
def notes(app):
    seen: list[tuple[str, str]] = []
    app.notify = lambda title, body, client=None, error=False: seen.append((title, body))
    return seen


def _finish(app):
    job = app.jobs[-1]
    assert job.wait(60), "the job did not end"
    return job


def test_export_layer_follows_the_layer_last_edited_not_a_hidden_generated_one(app, make_gaussians):
    app.state.add_scene(make_gaussians(40), "demo")
    app.refresh()
    app.state.add_scene(make_gaussians(60, seed=1), "generated")  # a generated layer arrives, made active
    app.refresh()
    panel = app.panel("export")
    assert panel.layer.value == "generated"
    # What the user did: hide the generated layer, pick the demo layer, edit it.
    app.action("Visibility", lambda: app.state.set_visible("generated", False))
    app.action("Select layer", lambda: app.state.set_active("demo"))
    app.action("Select", lambda: app.state.select(lambda i, g: g.means[:, 0] > 0))
    app.action("Delete", app.state.delete_selected)
    assert panel.layer.value == "demo"


def test_a_layer_picked_in_the_export_panel_stays_until_another_is_selected(app, make_gaussians):
    app.state.add_scene(make_gaussians(40), "a")
    app.state.add_scene(make_gaussians(40, seed=1), "b")
    app.refresh()
    panel = app.panel("export")
    panel.layer.value = "a"  # chosen on purpose in the Export tab
    app.action("Visibility", lambda: app.state.set_visible("b", True))
    assert panel.layer.value == "a"
    app.action("Select layer", lambda: app.state.set_active("a"))
    app.action("Select layer", lambda: app.state.set_active("b"))
    assert panel.layer.value == "b"


def test_every_save_is_confirmed_with_its_path_and_size(app, make_gaussians, notes):
    app.state.add_scene(make_gaussians(50), "demo")
    app.refresh()
    panel = app.panel("export")
    panel.name.value = "edited"
    panel._save(CLIENT)
    assert _finish(app).status == "done"
    path = app.output_dir / "edited.ply"
    size = describe_size(path.stat().st_size)
    assert len(load(path)) == 50
    assert ("Saved", f"Wrote {path} ({size})") in notes
    assert str(path) in panel.saved.content and size in panel.saved.content  # stays after the note closes

    panel.format.value = "sequence"
    panel.name.value = "clip"
    panel._save(CLIENT)
    assert _finish(app).status == "done"
    folder = app.output_dir / "clip"
    assert folder.is_dir() and f"({describe_size(written_bytes(folder))})" in notes[-1][1]


def test_sizes_read_as_people_write_them():
    assert [describe_size(n) for n in (0, 999, 1000, 14_200, 3_400_000, 1_200_000_000)] == [
        "0 bytes", "999 bytes", "1.0 KB", "14.2 KB", "3.4 MB", "1.20 GB"]


def test_download_is_confirmed_with_its_size(app, make_gaussians, notes):
    app.state.add_scene(make_gaussians(30), "demo")
    app.refresh()
    sent = []
    client = SimpleNamespace(send_file_download=lambda name, content, save_immediately: sent.append(content))
    app.panel("export")._download(SimpleNamespace(client=client))
    assert _finish(app).status == "done"
    assert notes[-1] == ("Downloaded", f"edited.ply ({describe_size(len(sent[0]))})")


def test_an_open_path_outside_the_served_folders_is_explained_in_the_page(server, tmp_path, make_gaussians):
    from lyra.scene import save
    from viewer.app import ViewerApp

    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    save(make_gaussians(10), elsewhere / "there.ply")
    app = ViewerApp(server, output_dir=tmp_path / "out", data_dirs=[data])
    try:
        app.notify = lambda *args, **kwargs: None
        panel = app.panel("scene")
        assert "--data-dir" in panel.open_note.content  # said before anyone is refused
        shown = []
        for raw in (elsewhere / "there.ply", elsewhere / "missing.ply"):
            panel.path.value = str(raw)
            panel._open_path(CLIENT)
            assert panel.open_note.content.startswith("**Not opened.**")
            assert "outside" in panel.open_note.content
            shown.append(panel.open_note.content.replace(str(raw), "PATH"))
            assert "last: Open refused" in status_line(app.state)
        assert shown[0] == shown[1]  # the same words whether the file exists or not
        assert app.state.layer_names() == []
    finally:
        app.stop()
        server.gui.reset()
        server.scene.reset()


def test_the_status_lines_last_follows_every_action_and_job(app, make_gaussians, notes):
    app.state.add_scene(make_gaussians(40), "demo")
    app.action("Select", lambda: app.state.select(lambda i, g: torch.ones(len(g), dtype=torch.bool)))
    app.action("Delete", app.state.delete_selected)
    first = status_line(app.state)
    assert "last: Delete" in first
    app.action("Visibility", lambda: app.state.set_visible("demo", False))
    assert "last: Visibility" in status_line(app.state)  # it used to stay on the delete
    app.action("Remove layer", lambda: app.state.remove_scene("nope"))  # fails: named as failed
    assert "last: Remove layer failed" in status_line(app.state)
    app.panel("export")._save(CLIENT)
    assert _finish(app).status == "done"
    assert "last: Export" in status_line(app.state)


# ------------------------------------------------------------------ item 9: keyframes in the Render panel
def _view(x: float, fov: float = 1.0):
    """A browser camera at (x, 0, -3), looking along +z."""
    return SimpleNamespace(wxyz=(1.0, 0.0, 0.0, 0.0), position=(x, 0.0, -3.0), fov=fov, aspect=1.5)


def _positions(editor) -> list[float]:
    return [k.position[0] for k in editor.keyframes]


def test_keyframes_are_added_from_the_view_reordered_and_deleted(app, notes):
    editor = app.panel("render").editor
    assert editor.path() is None and "No keyframes" in editor.listing.content
    for x in (0.0, 1.0, 2.0):
        app.action("Add keyframe", lambda x=x: editor.add_from_camera(_view(x)))
    assert _positions(editor) == [0.0, 1.0, 2.0] and editor.chosen.value == "3"
    assert editor.keyframes[0].fov_deg == pytest.approx(57.2958, abs=1e-3)  # 1 rad, vertical
    assert "these 3 keyframes" in editor.listing.content
    editor.chosen.value = "1"
    app.action("Move keyframe", lambda: editor.move(+1))
    assert _positions(editor) == [1.0, 0.0, 2.0] and editor.chosen.value == "2"  # the moved one stays chosen
    app.action("Add keyframe", lambda: editor.add_from_camera(_view(5.0)))  # inserted after the chosen one
    assert _positions(editor) == [1.0, 0.0, 5.0, 2.0]
    editor.chosen.value = "1"
    app.action("Move keyframe", lambda: editor.move(-1))
    assert notes[-1][0] == "Move keyframe failed" and "already the first" in notes[-1][1]
    app.action("Delete keyframe", editor.delete)
    assert _positions(editor) == [0.0, 5.0, 2.0]
    assert editor.chosen.options == ("1", "2", "3")


def test_render_mp4_follows_the_keyframes(app):
    from lyra.render.framing import trajectory_cameras
    from lyra.scene.synthetic import random_gaussians

    editor = app.panel("render").editor
    for x in (0.0, 2.0):
        editor.add_from_camera(_view(x))
    cameras, times = trajectory_cameras(random_gaussians(20), editor.path(), 5, 48, 32)
    assert times is None
    assert cameras.c2w[:, 0, 3].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0], abs=1e-5)


def test_the_camera_path_is_saved_inside_the_output_folder_and_loads_back(app, notes):
    from lyra.render.paths import CameraPath

    panel = app.panel("render")
    editor = panel.editor
    for x in (0.0, 1.0):
        editor.add_from_camera(_view(x))
    editor.file.value = "shots/path"
    app.action("Save camera path", editor.save)
    target = app.output_dir / "shots" / "path.json"
    assert [k.position for k in CameraPath.load(target).keyframes] == [k.position for k in editor.keyframes]
    assert panel.keyframes.value == str(target) and app.keyframed_path == str(target)  # Generate can use it
    assert list(target.parent.iterdir()) == [target]  # written atomically: no temporary left
    assert editor.file.value == "shots/path.json"

    editor.delete()
    editor.delete()
    assert editor.path() is None
    app.action("Load camera path", editor.load)
    assert _positions(editor) == [0.0, 1.0]


def test_saving_a_camera_path_never_leaves_the_output_folder_or_replaces_another_file(app, notes, tmp_path):
    editor = app.panel("render").editor
    editor.add_from_camera(_view(0.0))
    for name in ("../escape.json", str(tmp_path / "abs.json")):
        editor.file.value = name
        app.action("Save camera path", editor.save)
        assert notes[-1][0] == "Save camera path failed"
    assert not (tmp_path / "escape.json").exists() and not (tmp_path / "abs.json").exists()
    app.output_dir.mkdir(parents=True, exist_ok=True)
    other = app.output_dir / "notes.json"
    other.write_text('{"mine": true}')
    editor.file.value = "notes.json"
    app.action("Save camera path", editor.save)
    assert "not a camera path" in notes[-1][1] and other.read_text() == '{"mine": true}'


def test_loading_a_camera_path_is_confined_like_open_path(app, notes, tmp_path):
    from lyra.render.paths import CameraPath, Keyframe

    outside = CameraPath([Keyframe((0.0, 0.0, 0.0), look_at=(0.0, 0.0, 1.0))]).save(tmp_path / "elsewhere.json")
    editor = app.panel("render").editor
    for raw in (str(outside), str(tmp_path / "missing.json")):
        editor.file.value = raw
        app.action("Load camera path", editor.load)
        assert notes[-1][0] == "Load camera path failed" and "outside" in notes[-1][1]
    assert editor.path() is None


def _readme() -> str:
    from pathlib import Path

    return (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_export_list_names_every_format_the_export_panel_writes():
    from lyra.scene.formats import writable_formats

    export = " ".join(next(line for line in _readme().split("\n- **") if line.startswith("Export**")).split())
    names = {"ply": "PLY", "ply-compressed": "compressed PLY", "splat": ".splat", "sequence": "sequence folders",
             "spz": "SPZ", "sog": "SOG", "gltf": "glTF (`.glb`)", "sequence-glb": "GLB frames", "usd": "USD(Z)"}
    assert set(writable_formats()) == set(names)
    assert all(label in export for label in names.values())


def test_readme_documents_the_camera_path_json_and_its_example_loads():
    import json
    import re

    from lyra.render.paths import CameraPath

    readme = _readme()
    section = readme.split("### Camera paths", 1)[1].split("\n## ", 1)[0]
    example = json.loads(re.search(r"```json\n(.*?)```", section, flags=re.S).group(1))
    path = CameraPath.from_dict(example, "README example")
    assert len(path.keyframes) == 2 and path.keyframes[1].wxyz == (1.0, 0.0, 0.0, 0.0)
    for field in ("position", "look_at", "wxyz", "fov_deg", "time", "loop", "up"):
        assert f"`{field}`" in section or f'"{field}"' in section


def test_the_buffers_sent_at_first_load_are_finite_and_the_client_fix_is_queued(app, make_gaussians, monkeypatch):
    import numpy as np

    from viewer import scene_sync
    from viewer.client_patches import SPLAT_BOUNDING_SPHERE_JS, install_client_patches

    sent = []
    original = scene_sync.add_packed_splats
    monkeypatch.setattr(scene_sync, "add_packed_splats", lambda scene, name, buffer, visible=True: (
        sent.append(buffer), original(scene, name, buffer, visible))[1])
    app.state.add_scene(make_gaussians(300), "a")
    app.state.add_scene(make_gaussians(200, seed=1, sh_degree=2), "b")
    app.refresh()
    assert [len(b) for b in sent] == [300, 200]
    for buffer in sent:  # centres float32, covariance float16: nothing the client could turn into NaN
        assert np.isfinite(np.ascontiguousarray(buffer[:, 0:3]).view(np.float32)).all()
        assert np.isfinite(np.ascontiguousarray(buffer[:, 4:7]).view(np.float16)).all()

    queued = []
    fake = SimpleNamespace(gui=SimpleNamespace(_websock_interface=SimpleNamespace(queue_message=queued.append)))
    install_client_patches(fake)
    assert queued[0].source == SPLAT_BOUNDING_SPHERE_JS and "itemSize === 2" in queued[0].source

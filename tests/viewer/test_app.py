"""The viewer app on a real (local, in-process) viser server: uploads, export, concurrency, buffers sent."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from viser._gui_handles import UploadedFile

from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence, load, save
from viewer import edit_actions as act
from viewer.export import export_bytes, export_to_server, resolve_export_path

IDENTITY = (1.0, 0.0, 0.0, 0.0)


def upload(app, name: str, content: bytes) -> list[str]:
    """Feed an upload through the Scene panel's handler, wait for its job; returns the notifications raised."""
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append(f"{title}: {body}")
    before = list(app.jobs)
    app.panel("scene")._on_upload(None, UploadedFile(name, content))
    for job in app.jobs:
        if job not in before:
            assert job.wait(60), "the upload job did not end"
    return notes


def test_an_upload_loads_as_a_job_that_cancel_stops(app, make_gaussians, tmp_path, monkeypatch):
    import lyra.scene

    path = save(make_gaussians(64), tmp_path / "small.ply")
    release = threading.Event()
    real_load = lyra.scene.load

    def slow_load(*args, **kwargs):
        release.wait(30)  # a load that takes long (a large file)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(lyra.scene, "load", slow_load)
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append(f"{title}: {body}")
    app.panel("scene")._on_upload(None, UploadedFile("small.ply", path.read_bytes()))  # returns at once
    job = app.jobs[-1]
    assert job.name.startswith("Upload small.ply") and job.running
    job.cancel()
    assert job.wait(30) and job.status == "cancelled"
    release.set()
    assert app.state.layers == {} and any("cancelled" in note for note in notes)


@pytest.mark.parametrize("where", ["folder", "write"])
def test_an_upload_onto_a_full_disk_says_so(app, monkeypatch, where):
    import contextlib
    import errno

    import viewer.uploads

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def full_file(*args, **kwargs):
        yield SimpleNamespace(write=full)

    if where == "folder":
        monkeypatch.setattr(viewer.uploads.tempfile, "mkdtemp", full)
    else:
        monkeypatch.setattr(viewer.uploads, "atomic_write", full_file)
    notes = upload(app, "scene.ply", b"ply\n")
    assert len(notes) == 1 and "full disk" in notes[0] and "internal error" not in notes[0]
    assert app.state.layers == {}


def test_corrupt_upload_notifies_and_leaves_loaded_scenes_untouched(app, make_gaussians):
    app.state.add_scene(make_gaussians(50), "kept")
    notes = upload(app, "broken.ply", b"ply\nformat binary_little_endian 1.0\nelement vertex 99\nend_header\n\x00\x01")
    assert len(notes) == 1 and "failed" in notes[0]
    assert list(app.state.layers) == ["kept"] and len(app.state.current().gaussians) == 50


def test_upload_over_the_size_limit_is_refused(app):
    notes = upload(app, "big.ply", b"x" * (2 * 1024 * 1024))
    assert len(notes) == 1 and "MiB" in notes[0]
    assert app.state.layers == {}


def test_valid_upload_opens_a_new_layer(app, make_gaussians, tmp_path):
    path = save(make_gaussians(64), tmp_path / "small.ply")
    assert upload(app, "../../small.ply", path.read_bytes()) == []
    assert list(app.state.layers) == ["small"] and len(app.state.current().gaussians) == 64


def test_export_path_confined_to_the_output_folder(tmp_path):
    root = tmp_path / "out"
    assert resolve_export_path(root, "a/b", "ply") == (root / "a" / "b.ply").resolve()
    assert resolve_export_path(root, "x.ply", "ply-compressed").name == "x.compressed.ply"
    for hostile in ("../escape", "a/../../escape", "/etc/passwd", "~/x", "   ", "sub/", "a/..", "..\\x", "a\0b"):
        with pytest.raises(SceneFileError):
            resolve_export_path(root, hostile, "ply")


def test_export_refuses_to_overwrite_unless_asked(app, make_gaussians):
    app.state.add_scene(make_gaussians(30), "s")
    first = export_to_server(app.state, None, app.output_dir, "scene", "ply")
    with pytest.raises(SceneFileError, match="overwrite"):
        export_to_server(app.state, None, app.output_dir, "scene", "ply")
    assert export_to_server(app.state, None, app.output_dir, "scene", "ply", overwrite=True) == first


def test_sequence_export_never_overwrites_a_folder_that_is_not_a_sequence(app, make_gaussians):
    app.state.add_scene(GaussianSequence([make_gaussians(20, seed=i) for i in range(2)]), "clip")
    projects = app.output_dir / "projects"
    projects.mkdir(parents=True)
    (projects / "important.txt").write_text("keep me")
    with pytest.raises(SceneFileError, match="not a sequence"):
        export_to_server(app.state, None, app.output_dir, "projects", "sequence", overwrite=True)
    assert (projects / "important.txt").read_text() == "keep me"
    written = export_to_server(app.state, None, app.output_dir, "clip", "sequence")
    assert export_to_server(app.state, None, app.output_dir, "clip", "sequence", overwrite=True) == written


def test_layers_whose_names_sanitise_alike_get_their_own_splat_nodes(app, make_gaussians):
    app.state.add_scene(make_gaussians(30, seed=1), "a b")
    app.state.add_scene(make_gaussians(31, seed=2), "a_b")
    app.refresh()
    nodes = app.sync_scene._nodes
    assert nodes["a b"].name != nodes["a_b"].name
    assert nodes["a b"].buffer.shape == (30, 8) and nodes["a_b"].buffer.shape == (31, 8)


def test_export_applies_soft_deletes_and_loads_back_with_sh(app, make_gaussians):
    g = make_gaussians(200, sh_degree=2)
    app.state.add_scene(g, "sh")
    act.select_box(app.state, (0, 0, 0), IDENTITY, (0.5, 0.5, 0.5))
    app.state.delete_selected()
    path = export_to_server(app.state, None, app.output_dir, "edited", "ply")
    loaded = load(path)
    keep = ~(g.means.abs() <= 0.5).all(-1)
    assert loaded.sh_degree == 2 and loaded.equal(g[keep], atol=1e-5)


def test_sequence_download_is_a_zip_that_loads_back_as_the_edited_sequence(app, make_gaussians, tmp_path):
    app.state.add_scene(GaussianSequence([make_gaussians(80, seed=i) for i in range(3)], fps=12), "clip")
    act.select_box(app.state, (0, 0, 0), IDENTITY, (0.5, 0.5, 0.5))
    app.state.delete_selected()
    name, content = export_bytes(app.state, None, "clip", "sequence")
    assert name == "clip.zip"
    (tmp_path / name).write_bytes(content)
    loaded = load(tmp_path / name)
    expected = app.state.edited_scene()
    assert isinstance(loaded, GaussianSequence) and len(loaded) == 3
    assert all(a.equal(b, atol=1e-5) for a, b in zip(loaded.frames, expected.frames, strict=True))


def test_sync_sends_the_current_frame_buffer_to_the_splat_node(app, make_gaussians):
    app.state.add_scene(GaussianSequence([make_gaussians(40 + i, seed=i) for i in range(3)]), "clip")
    app.refresh()
    node = app.sync_scene._nodes["clip"]
    assert node.buffer.shape == (40, 8)
    app.panel("time").show_frame(2)
    np.testing.assert_array_equal(node.buffer, app.state.display_buffer("clip"))
    assert node.buffer.shape == (42, 8)


def test_concurrent_edits_from_two_threads_leave_a_consistent_state(make_gaussians):
    from viewer.state import AppState

    state = AppState()
    state.add_scene(make_gaussians(3000), "shared")
    errors = []

    def editor(center):
        try:
            for _ in range(25):
                with state.lock:  # one tab's select-then-delete is one transaction
                    if act.select_sphere(state, center, 0.4):
                        state.delete_selected()
                state.undo()
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=editor, args=(c,)) for c in ((-0.5, 0, 0), (0.5, 0, 0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    frame = state.current()
    # every delete was undone: nothing deleted, history empty of done commands, buffer whole
    assert not frame.deleted.any()
    assert all(not done for _, done in state.history.labels())
    assert len(state.display_buffer("shared")) == 3000
    assert not (frame.selected & frame.deleted).any()
    assert torch.equal(frame.gaussians.means, state.layer().frames[0].gaussians.means)


def test_download_button_sends_the_edited_file_to_the_browser(app, make_gaussians):
    app.state.add_scene(make_gaussians(40), "dl")
    act.select_box(app.state, (0, 0, 0), IDENTITY, (0.5, 0.5, 0.5))
    app.state.delete_selected()
    sent = []
    client = SimpleNamespace(send_file_download=lambda name, content, save_immediately: sent.append((name, content)),
                             add_notification=lambda *a, **k: None)
    app.panel("export").format.value = "splat"
    app.panel("export").name.value = "mine"
    app.panel("export")._download(SimpleNamespace(client=client))
    assert app.jobs[-1].wait(30) and app.jobs[-1].status == "done"
    (name, content), = sent
    assert name == "mine.splat" and len(content) == 32 * len(app.state.edited_scene())


def test_failed_action_notifies_the_browser_and_changes_nothing(app, make_gaussians):
    app.state.add_scene(make_gaussians(40), "s")
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append((title, body, error))
    assert app.action("Delete", app.state.delete_selected) is None
    assert notes == [("Delete failed", "nothing is selected", True)]
    assert not app.state.current().deleted.any()


def test_gizmo_move_translates_and_rotates_the_selection_by_the_gizmo_motion(app, make_gaussians):
    g = make_gaussians(100)
    app.state.add_scene(g, "g")
    act.select_box(app.state, (0, 0, 0), IDENTITY, (0.5, 0.5, 0.5))
    mask = app.state.current().selected.clone()
    panel = app.panel("edit")
    panel.gizmo.position = (0.0, 0.0, 0.0)
    panel._anchor = (np.array([1.0, 0, 0, 0]), np.zeros(3))
    panel.gizmo.wxyz = (0.0, 0.0, 0.0, 1.0)  # half turn about z: (x, y) -> (-x, -y)
    panel.gizmo.position = (0.0, 0.0, 2.0)
    panel._apply_gizmo_move()
    moved = app.state.current().gaussians.means
    expected = g.means[mask] * torch.tensor([-1.0, -1.0, 1.0]) + torch.tensor([0.0, 0.0, 2.0])
    assert torch.allclose(moved[mask], expected, atol=1e-5)
    assert torch.equal(moved[~mask], g.means[~mask])
    assert [label for label, _ in app.state.history.labels()] == ["Move (gizmo)"]


def ply_with_one_nan(path, gaussians):
    """A valid PLY whose first splat's x is patched to NaN."""
    save(gaussians, path)
    data = bytearray(path.read_bytes())
    start = data.index(b"end_header\n") + len(b"end_header\n")
    data[start:start + 4] = np.array([np.nan], dtype="<f4").tobytes()
    path.write_bytes(bytes(data))
    return path


def test_file_with_nan_is_refused_unless_drop_invalid_is_ticked(app, make_gaussians, tmp_path):
    path = ply_with_one_nan(tmp_path / "nan.ply", make_gaussians(30))
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append(body)
    assert app.action("Open", lambda: app.open_scene(path)) is None
    assert len(notes) == 1 and app.state.layers == {}
    layer = app.action("Open", lambda: app.open_scene(path, drop_invalid=True))
    assert layer == "nan" and len(app.state.current().gaussians) == 29
    assert "dropped 1 of 30" in notes[-1]


def test_deleting_every_splat_hides_the_node_and_undo_shows_it_again(app, make_gaussians):
    app.state.add_scene(make_gaussians(25), "all")
    app.refresh()
    node = app.sync_scene._nodes["all"]
    act.select_box(app.state, (0, 0, 0), IDENTITY, (5, 5, 5))
    app.action("Delete", app.state.delete_selected)
    assert node.visible is False
    app.action("Undo", app.state.undo)
    assert node.visible is True and node.buffer.shape == (25, 8)

"""The Generate panel on a real in-process viser server: uploads, a lift run as a job, bad input, blocked backends."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
from viser._gui_handles import UploadedFile


@pytest.fixture
def app(app):
    """The shared ViewerApp (tests/viewer/conftest.py) with its notifications recorded in ``app.notes``."""
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append((title, body, error))
    app.notes = notes
    return app


def png_bytes(image: np.ndarray) -> bytes:
    return iio.imwrite("<bytes>", image, extension=".png")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def upload(panel, handle_name: str, name: str, content: bytes) -> None:
    """Deliver an upload as viewer.security.UploadLimiter does: (client id, its own UploadedFile)."""
    (panel._on_upload if handle_name == "upload" else panel._on_depth_upload)(None, UploadedFile(name, content))


def wait_for_jobs(app, timeout=60.0):
    """Until every job's thread has ended, so its final notification has been sent too (status flips first)."""
    deadline = time.monotonic() + timeout
    for job in list(app.jobs):
        assert job.wait(max(0.0, deadline - time.monotonic())), "job did not finish"


def test_image_and_depth_upload_then_lift_adds_a_framed_layer(app, make_gaussians):
    app.state.add_scene(make_gaussians(30), "already-open")
    panel = app.panel("generate")
    image = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    upload(panel, "upload", "photo.png", png_bytes(image))
    upload(panel, "depth_upload", "depth.npy", npy_bytes(np.full((12, 16), 2.0, np.float32)))
    assert "photo.png" in panel.input_info.content and "16x12 image" in panel.input_info.content
    panel._on_generate(SimpleNamespace(client=None))
    wait_for_jobs(app)
    assert app.state.layer_names() == ["already-open", "generated-photo"]
    info = app.state.layer_info("generated-photo")
    assert info.splats == 12 * 16
    assert ("Generated", "generated-photo: 192 splats", False) in app.notes


def test_non_image_upload_is_refused_and_nothing_open_changes(app, make_gaussians):
    app.state.add_scene(make_gaussians(30), "kept")
    panel = app.panel("generate")
    upload(panel, "upload", "notes.png", b"this is not a picture")
    assert any(error and "expected an image" in body for _, body, error in app.notes)
    assert panel._input is None and app.state.layer_names() == ["kept"]
    upload(panel, "depth_upload", "depth.txt", b"1 2 3")
    assert any(error and "expected a depth file" in body for _, body, error in app.notes)


def test_generate_without_input_or_depth_says_what_is_missing(app):
    panel = app.panel("generate")
    panel._on_generate(SimpleNamespace(client=None))
    assert any(error and "upload an image" in body for _, body, error in app.notes)
    upload(panel, "upload", "photo.png", png_bytes(np.zeros((8, 8, 3), np.uint8)))
    panel._on_generate(SimpleNamespace(client=None))  # no depth file and no depth model on this machine
    wait_for_jobs(app)
    assert any(error and "no depth" in body for _, body, error in app.notes)
    assert app.state.layer_names() == []


def test_lyra_backend_is_blocked_with_the_models_to_get(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LYRA_MODELS", str(tmp_path / "none.yaml"))
    panel = app.panel("generate")
    panel._missing_cache.clear()
    panel.backend.value = "lyra (GEN3C + decoder)"
    panel._update_backend()
    assert panel.generate_button.disabled
    assert "blocked" in panel.generate_button.label
    assert "missing models" in panel.models.content and "lyra models check" in panel.models.content
    panel.backend.value = "lift (fast preview)"
    panel._update_backend()
    assert not panel.generate_button.disabled and panel.generate_button.label == "Generate"
    assert "upload a depth file" in panel.models.content  # no depth model here: the lift says what to do


def test_a_video_input_lists_the_dynamic_decoder_instead_of_the_static_one(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LYRA_MODELS", str(tmp_path / "none.yaml"))
    panel = app.panel("generate")
    panel._missing_cache.clear()
    panel.backend.value = "lyra (GEN3C + decoder)"
    panel._update_backend()
    assert "decoder_static" in panel.models.content and "decoder_dynamic" not in panel.models.content
    frames = np.random.default_rng(1).integers(0, 256, (4, 32, 48, 3), dtype=np.uint8)
    video = iio.imwrite("<bytes>", frames, extension=".mp4", fps=24)
    upload(panel, "upload", "clip.mp4", video)
    assert "video" in panel.input_info.content
    assert "decoder_dynamic" in panel.models.content and "decoder_static" not in panel.models.content
    assert panel.generate_button.disabled


def test_the_render_panels_keyframed_path_is_added_as_a_custom_trajectory(app, tmp_path):
    app.paths.add(tmp_path)
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes(np.zeros((12, 16, 3), np.uint8)))
    path_json = tmp_path / "path.json"
    path_json.write_text('{"keyframes": [{"position": [0, 0, -3], "look_at": [0, 0, 0]}]}')  # read (checked) at once
    panel = app.panel("generate")
    panel.path.value = str(image)
    panel.use_render_path.value = True
    with pytest.raises(Exception, match="Render panel has no keyframed path"):
        panel._request()
    app.panel("render").keyframes.value = str(path_json)  # the Render panel publishes it through the app
    request = panel._request()
    assert request["custom"] == str(path_json.resolve()) and request["trajectories"][-1] == "custom"
    panel.use_render_path.value = False
    assert panel._request()["custom"] is None

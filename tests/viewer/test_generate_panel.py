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
    wait_for_jobs(panel.app)  # an upload is read as a job


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
    panel.backend.value = "lyra (teacher + decoder)"
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
    panel.backend.value = "lyra (teacher + decoder)"
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
    with pytest.raises(Exception, match="custom_path: the Render panel has no keyframed path"):
        panel.build_request()
    app.panel("render").keyframes.value = str(path_json)  # the Render panel publishes it through the app
    request = panel.build_request()
    assert request.custom_path == str(path_json.resolve()) and request.trajectories[-1] == "custom"
    panel.use_render_path.value = False
    assert panel.build_request().custom_path is None


# --------------------------------------------------------------------------- one request, three doors
def write_photo(folder):
    rng = np.random.default_rng(5)
    iio.imwrite(folder / "photo.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    np.save(folder / "depth.npy", np.full((24, 32), 2.0, np.float32))
    return (folder / "photo.png").resolve(), (folder / "depth.npy").resolve()


def test_panel_cli_and_api_build_the_same_request_and_scene(app, tmp_path):
    import dataclasses

    import torch

    from lyra.cli import build_parser
    from lyra.cli.generate import request_from_args
    from lyra.pipeline.request import GenerateRequest, run

    app.paths.add(tmp_path)
    image, depth = write_photo(tmp_path)
    panel = app.panel("generate")
    panel.path.value, panel.depth_path.value = str(image), str(depth)
    panel.camera.value = "intrinsics"
    panel.fx.value, panel.fy.value, panel.cx.value, panel.cy.value = 30.0, 31.0, 16.0, 12.5
    panel.size.value = "640x352"
    from_panel = panel.build_request()
    flags = ["generate", str(image), "--depth", str(depth), "--intrinsics", "30,31,16,12.5", "--size", "640x352",
             "--out", str(tmp_path / "cli.ply")]
    from_cli = request_from_args(build_parser("generate").parse_args(flags))
    from_api = GenerateRequest(input=str(image), depth=str(depth), intrinsics=[30, 31, 16, 12.5], size=(640, 352))
    same = lambda r: dataclasses.replace(r, output=None, work_dir=None)  # noqa: E731 - where results go differs
    assert same(from_panel) == same(from_cli) == same(from_api)
    assert from_panel.size == (640, 352)  # the panel passes a generation size
    panel._on_generate(SimpleNamespace(client=None))
    wait_for_jobs(app)
    assert app.state.layer_names() == ["generated-photo"]
    scene = run(from_api)
    assert app.state.layer_info("generated-photo").splats == len(scene) > 0
    assert torch.equal(run(from_cli).means, scene.means)


def test_an_upload_never_silently_overrides_the_server_path(app, tmp_path):
    app.paths.add(tmp_path)
    image, depth = write_photo(tmp_path)
    panel = app.panel("generate")
    panel.path.value = str(image)
    upload(panel, "upload", "other.png", png_bytes(np.zeros((8, 8, 3), np.uint8)))
    assert "Input: uploaded other.png" in panel.input_info.content and "not used" in panel.input_info.content
    assert panel.path.disabled and not panel.clear_input.disabled
    assert panel.build_request().input.endswith("other.png")
    app.action("Clear upload", panel._clear_input)
    assert not panel.path.disabled and panel.clear_input.disabled
    assert panel.build_request().input == str(image)  # the server path is the input again


def test_a_depth_upload_is_confirmed_and_can_be_cleared(app, tmp_path):
    panel = app.panel("generate")
    depth = np.full((12, 16), 2.0, np.float32)
    depth[0, 0] = 4.5
    upload(panel, "depth_upload", "depth.npy", npy_bytes(depth))
    assert ("Depth uploaded", "depth.npy: 16x12, 2 to 4.5 m", False) in app.notes
    assert "Depth: uploaded depth.npy" in panel.depth_info.content and panel.depth_path.disabled
    upload(panel, "depth_upload", "broken.npy", b"not numpy")
    assert any(error and "broken.npy" in body for _, body, error in app.notes)
    app.action("Clear depth upload", panel._clear_depth)
    assert panel._depth is None and not panel.depth_path.disabled


def test_errors_name_request_fields_not_flags(app, tmp_path):
    app.paths.add(tmp_path)
    image, _ = write_photo(tmp_path)
    panel = app.panel("generate")
    panel.path.value = str(image)
    panel.size.value = "1000x704"
    panel._on_generate(SimpleNamespace(client=None))
    panel.size.value = "1280x704"
    panel.times.value = "0:x"
    panel._on_generate(SimpleNamespace(client=None))
    errors = [body for _, body, error in app.notes if error]
    assert errors[0].startswith("size: expected multiples of 16") and errors[1].startswith("times: ")
    panel.times.value = ""
    panel._on_generate(SimpleNamespace(client=None))  # no depth file, no depth model
    wait_for_jobs(app)
    last = [body for _, body, error in app.notes if error][-1]
    assert "depth_model" in last and "--" not in last


def test_save_and_load_a_request(app, tmp_path):
    app.paths.add(tmp_path)
    image, depth = write_photo(tmp_path)
    panel = app.panel("generate")
    panel.path.value, panel.depth_path.value = str(image), str(depth)
    panel.camera.value, panel.fov.value = "field of view", 41
    panel.trajectories["up"].value = False
    panel.seed.value, panel.size.value = 9, "640x352"
    saved = panel.build_request()
    panel.request_file.value = "requests/photo.yaml"
    panel._on_save_request(SimpleNamespace(client=None))
    written = app.output_dir / "requests" / "photo.yaml"
    assert any(title == "Request saved" and str(written) in body for title, body, _ in app.notes)
    panel.path.value, panel.seed.value, panel.camera.value = "", 0, "auto"
    panel._on_load_request(SimpleNamespace(client=None))
    assert panel.build_request() == saved
    assert panel.fov.value == 41 and not panel.trajectories["up"].value


def test_a_video_result_reports_the_clips_own_frame_rate(app, tmp_path):
    from lyra.pipeline.sdg import write_depth_zip

    folder = tmp_path / "vipe"
    for sub in ("rgb", "depth", "pose", "intrinsics"):
        (folder / sub).mkdir(parents=True)
    frames = np.random.default_rng(2).integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    iio.imwrite(folder / "rgb" / "clip.mp4", frames, fps=8, codec="libx264", macro_block_size=1)
    write_depth_zip(folder / "depth" / "clip.zip", np.full((3, 16, 24), 2.0, np.float32))
    np.savez(folder / "pose" / "clip.npz", data=np.tile(np.eye(4), (3, 1, 1)), inds=np.arange(3))
    np.savez(folder / "intrinsics" / "clip.npz", data=np.tile([20.0, 20.0, 12.0, 8.0], (3, 1)), inds=np.arange(3))
    app.paths.add(tmp_path)
    panel = app.panel("generate")
    panel.path.value, panel.times.value = str(folder), "0,2"
    panel._on_generate(SimpleNamespace(client=None))
    wait_for_jobs(app)
    generated = [body for title, body, _ in app.notes if title == "Generated"]
    assert len(generated) == 1 and generated[0].endswith("splats, 2 frames at 8 fps")  # not the decoder's 24


def test_the_blocked_lyra_backend_says_it_needs_a_large_cuda_gpu(app, monkeypatch, tmp_path):
    monkeypatch.setenv("LYRA_MODELS", str(tmp_path / "none.yaml"))
    panel = app.panel("generate")
    panel._missing_cache.clear()
    panel.backend.value = "lyra (teacher + decoder)"
    assert "large CUDA GPU" in panel.models.content
    for mode in ("none", "model", "group", "+fp8"):
        assert mode in panel.models.content
    panel.teacher.value = "lift (CPU preview of the trajectories)"
    assert "gen3c" not in panel.models.content and "decoder_static" in panel.models.content

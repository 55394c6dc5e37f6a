"""Issue 20 §3.3: GUI values sent by a client are checked on the server against their widget (one guard for all).

Real websocket clients send what a hostile page could: a render height of 20000, 1e7 frames, a dropdown
value outside its options, a rewrite of a slider's max, a number where text belongs. Each is refused with a
notification to that client; the widget and the panels never see it. A camera aspect of 1e6 is refused too.
"""

from __future__ import annotations

import msgspec
import pytest
from websockets.sync.client import connect

from lyra.errors import LyraError
from lyra.render.camera import Camera
from tests.security.test_viewer_server import PROTOCOL, wait_for
from viewer.app import ViewerApp
from viewer.security import AccessPolicy, start_server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    server = start_server("127.0.0.1", 0, AccessPolicy.for_host("127.0.0.1"), verbose=False)
    app = ViewerApp(server, output_dir=tmp_path_factory.mktemp("out"))
    app.notes = []
    app.notify = lambda title, body, client=None, error=False: app.notes.append((title, body, error))
    port = server.get_port()
    ws = connect(f"ws://127.0.0.1:{port}", origin=f"http://127.0.0.1:{port}", subprotocols=PROTOCOL,
                 open_timeout=30, max_size=None)
    ws.recv(timeout=30)
    yield app, ws
    ws.close()
    app.stop()
    server.stop()


def send(ws, handle, updates: dict) -> None:
    ws.send(msgspec.msgpack.encode({"type": "GuiUpdateMessage", "uuid": handle._impl.uuid, "updates": updates}))


@pytest.mark.parametrize("widget, updates, reason", [
    ("height", {"value": 20000}, "20000 is outside 64..1080"),
    ("num_frames", {"value": 1e7}, "outside 8..240"),
    ("path", {"value": "../../etc/passwd"}, "not one of its options"),
    ("look", {"value": 3}, "not one of its options"),
    ("height", {"max": 100000}, "only its value can be changed"),
    ("height", {"value": float("nan")}, "not a finite number"),
    ("height", {"value": "tall"}, "not a finite number"),
    ("video_name", {"value": 12}, "not text"),
    ("video_name", {"value": "x" * 100_000}, "longer than 4096 characters"),
    ("freeze_time", {"value": "yes"}, "not true or false"),
])
def test_a_value_outside_its_widget_is_refused_with_a_notification(guarded, widget, updates, reason):
    app, ws = guarded
    handle = getattr(app.panel("render"), widget)
    before_value, before_props = handle.value, (getattr(handle, "max", None), getattr(handle, "options", None))
    notes_before = len(app.notes)
    send(ws, handle, updates)
    assert wait_for(lambda: len(app.notes) > notes_before, timeout=30)
    title, body, error = app.notes[-1]
    assert title == f"{handle.label}: value refused" and reason in body and error
    assert handle.value == before_value
    assert (getattr(handle, "max", None), getattr(handle, "options", None)) == before_props


def test_a_value_inside_its_widget_is_taken(guarded):
    app, ws = guarded
    render = app.panel("render")
    notes_before = len(app.notes)
    send(ws, render.height, {"value": 720})
    send(ws, render.path, {"value": render.path.options[-1]})
    assert wait_for(lambda: render.height.value == 720 and render.path.value == render.path.options[-1], timeout=30)
    assert len(app.notes) == notes_before


def test_a_client_camera_with_an_absurd_aspect_or_fov_is_a_lyra_error():
    with pytest.raises(LyraError, match="aspect ratio"):
        Camera.from_viser(wxyz=(1, 0, 0, 0), position=(0, 0, 0), fov=1.0, aspect=1e6, height=360)
    with pytest.raises(LyraError, match="field of view"):
        Camera.from_viser(wxyz=(1, 0, 0, 0), position=(0, 0, 0), fov=float("nan"), aspect=1.5, height=360)
    camera = Camera.from_viser(wxyz=(1, 0, 0, 0), position=(0, 0, 0), fov=1.0, aspect=16 / 9, height=360)
    assert (camera.width, camera.height) == (640, 360)

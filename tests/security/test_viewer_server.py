"""Finding 1 and 5 (server): foreign origins, tokens, the share tunnel and uploads, through real websocket clients."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
import uuid

import msgspec
import pytest
import viser
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from viewer.app import ViewerApp
from viewer.security import AccessPolicy, is_loopback, start_server

PROTOCOL = [f"viser-v{viser.__version__}"]


def wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    """A viewer on loopback with the real access policy and an app (1 MiB upload limit)."""
    policy = AccessPolicy.for_host("127.0.0.1", ["http://allowed.example:3000"])
    server = start_server("127.0.0.1", 0, policy, verbose=False)
    app = ViewerApp(server, output_dir=tmp_path_factory.mktemp("out"), max_upload_mb=1)
    yield app, policy
    app.stop()
    server.stop()


def _connect(port: int, origin: str | None, path: str = "", **kwargs):
    return connect(f"ws://127.0.0.1:{port}{path}", origin=origin, subprotocols=PROTOCOL, open_timeout=5, **kwargs)


def _status(port: int, origin: str | None, path: str = "", **kwargs) -> int:
    try:
        with _connect(port, origin, path, **kwargs) as ws:
            ws.recv(timeout=5)  # the server talks to accepted clients at once
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_websocket_from_a_foreign_origin_is_refused(viewer):
    app, policy = viewer
    port = app.server.get_port()
    refused_before = policy.refused
    assert _status(port, "http://evil.example") == 403
    assert _status(port, f"http://127.0.0.1:{port + 1}") == 403  # another local port is another origin
    assert _status(port, "null") == 403  # sandboxed iframes, file:// pages
    assert policy.refused == refused_before + 3
    assert app.server.get_clients() == {}  # viser never saw them
    assert _status(port, f"http://127.0.0.1:{port}") == 101  # the viewer's own page
    assert _status(port, "http://allowed.example:3000") == 101  # --allow-origin
    assert _status(port, None) == 101  # a local script (no Origin header): loopback, no token needed


def test_dns_rebinding_host_is_refused_on_loopback(viewer):
    app, _ = viewer
    port = app.server.get_port()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": f"evil.example:{port}"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 403
    # a websocket to the rebound name: the page's own origin, but not our name
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with pytest.raises(InvalidStatus) as info:
        connect(f"ws://evil.example:{port}", sock=sock, origin=f"http://evil.example:{port}", subprotocols=PROTOCOL)
    assert info.value.response.status_code == 403
    assert _status(port, f"http://127.0.0.1:{port}", additional_headers={"Host": f"evil.example:{port}"}) == 400


def test_share_requests_are_refused_on_the_server(viewer, monkeypatch):
    app, _ = viewer
    import viser._viser as viser_module

    def no_tunnel(*args, **kwargs):
        raise AssertionError("a share tunnel was created")

    monkeypatch.setattr(viser_module, "ViserTunnel", no_tunnel)
    port = app.server.get_port()
    before = app.server.share_refusals["count"]
    with _connect(port, f"http://127.0.0.1:{port}") as ws:
        ws.recv(timeout=5)
        ws.send(msgspec.msgpack.encode({"type": "ShareUrlRequest"}))
        assert wait_for(lambda: app.server.share_refusals["count"] == before + 1)
    assert app.server.request_share_url() is None
    assert app.server._share_tunnel is None


def _upload_messages(source: str, content: bytes, declared: int | None = None, parts: int = 1) -> list[bytes]:
    transfer = str(uuid.uuid4())
    start = {"type": "FileTransferStartUpload", "source_component_uuid": source, "transfer_uuid": transfer,
             "filename": "scene.ply", "mime_type": "application/octet-stream", "part_count": parts,
             "size_bytes": len(content) if declared is None else declared}
    chunk = -(-len(content) // parts) if content else 0
    messages = [msgspec.msgpack.encode(start)]
    for i in range(parts):
        messages.append(msgspec.msgpack.encode({"type": "FileTransferPart", "source_component_uuid": source,
                                                "transfer_uuid": transfer, "part_index": i,
                                                "content": content[i * chunk:(i + 1) * chunk]}))
    return messages


def test_upload_over_the_limit_is_refused_on_its_declared_size(viewer):
    app, _ = viewer
    port = app.server.get_port()
    refused, received = [], []
    app.uploads.on_refused = lambda client_id, name, size: refused.append(size)
    app.uploads._callbacks[app.panel("scene").upload._impl.uuid] = lambda client_id, f: received.append(f)
    states = app.server.gui._current_file_upload_states
    source = app.panel("scene").upload._impl.uuid
    with _connect(port, f"http://127.0.0.1:{port}") as ws:
        ws.recv(timeout=5)
        big = 300 << 20
        start, *parts = _upload_messages(source, b"x" * 4096, declared=big, parts=2)
        ws.send(start)
        assert wait_for(lambda: refused == [big])
        assert states == {}  # nothing set up to buffer into
        for part in parts:
            ws.send(part)
        # A client that lies low and then overruns its declared size is cut off at the overrun.
        start, part = _upload_messages(source, b"y" * 8192, declared=1000, parts=1)
        ws.send(start)
        ws.send(part)
        assert wait_for(lambda: len(refused) == 2)
        time.sleep(0.2)
    assert states == {} and received == []


def test_uploads_in_flight_are_capped_in_total_and_a_departed_clients_transfer_is_dropped(viewer):
    app, _ = viewer
    port = app.server.get_port()
    refused, received = [], []
    app.uploads.on_refused = lambda client_id, name, size, reason=None: refused.append((size, reason))
    source = app.panel("scene").upload._impl.uuid
    app.uploads._callbacks[source] = lambda client_id, f: received.append(f)
    states = app.server.gui._current_file_upload_states
    limit, app.uploads.max_total_bytes = app.uploads.max_total_bytes, 1 << 20
    try:
        with _connect(port, f"http://127.0.0.1:{port}") as ws:
            ws.recv(timeout=5)
            first = _upload_messages(source, b"a" * (600 << 10), parts=2)
            ws.send(first[0])  # started, not finished: 600 KiB held
            assert wait_for(lambda: len(states) == 1)
            second = _upload_messages(source, b"b" * (600 << 10), parts=2)
            ws.send(second[0])
            assert wait_for(lambda: len(refused) == 1)
            assert refused[0][0] == 600 << 10 and "at most 1 MiB at once" in refused[0][1]
            assert len(states) == 1 and app.uploads.in_flight_bytes() == 600 << 10
        # The client left mid-transfer: its buffer no longer counts (nor stays).
        assert wait_for(lambda: app.uploads.in_flight_bytes() == 0)
        assert states == {} and received == []
    finally:
        app.uploads.max_total_bytes = limit


def test_two_uploads_finishing_together_each_get_their_own_content(viewer):
    app, _ = viewer
    port = app.server.get_port()
    received, gate = [], threading.Barrier(2, timeout=5)

    def slow_callback(client_id, uploaded):
        gate.wait()  # both callbacks are running at the same time before either reads anything
        received.append(uploaded.content)

    source = app.panel("scene").upload._impl.uuid
    app.uploads._callbacks[source] = slow_callback
    first, second = _upload_messages(source, b"A" * 3000), _upload_messages(source, b"B" * 5000)
    with _connect(port, f"http://127.0.0.1:{port}") as ws:
        ws.recv(timeout=5)
        for message in (first[0], second[0], first[1], second[1]):
            ws.send(message)
        assert wait_for(lambda: len(received) == 2)
    assert sorted(received) == [b"A" * 3000, b"B" * 5000]


def test_non_loopback_bind_requires_the_token():
    assert not is_loopback("0.0.0.0") and is_loopback("127.0.0.2") and is_loopback("[::1]")
    policy = AccessPolicy.for_host("0.0.0.0")
    assert policy.token and len(policy.token) >= 20  # generated
    server = start_server("0.0.0.0", 0, policy, verbose=False)
    try:
        port = server.get_port()
        own = f"http://127.0.0.1:{port}"
        assert _status(port, own) == 401
        assert _status(port, own, "/?token=wrong") == 401
        assert _status(port, own, f"/?token={policy.token}") == 101
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert info.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={policy.token}", timeout=5) as response:
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        # the browser's websocket carries the cookie (its URL has no query string)
        assert _status(port, own, additional_headers={"Cookie": cookie.split(";")[0]}) == 101
        assert _status(port, "http://evil.example", f"/?token={policy.token}") == 403  # token does not lift Origin
    finally:
        server.stop()


def test_launch_beyond_loopback_warns_and_prints_a_url_with_the_token(tmp_path):
    import re
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from lyra.scene import save
    from tests.security.conftest import tiny_gaussians

    root = Path(__file__).resolve().parents[2]
    scene = save(tiny_gaussians(8), tmp_path / "s.ply")
    proc = subprocess.Popen([sys.executable, str(root / "launch.py"), str(scene), "--host", "0.0.0.0", "--port", "0",
                             "--output-dir", str(tmp_path / "out")], cwd=root, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        while not lines or not (lines[-1].startswith("Loaded:") or lines[-1] == ""):
            lines.append(proc.stdout.readline())
        text = "".join(lines)
        match = re.search(r"http://\S+:(\d+)/\?token=(\S+)", text)
        assert match and "WARNING" in text, text
        port, token = int(match.group(1)), match.group(2)
        own = f"http://127.0.0.1:{port}"
        assert _status(port, own) == 401
        assert _status(port, own, f"/?token={token}") == 101
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _raw_status(port: int, path: bytes, headers: bytes) -> bytes:
    """The status line for a hand-written request (headers a client library would not send)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % port + headers + b"\r\n")
        return sock.recv(200).split(b"\r\n")[0]


@pytest.mark.parametrize("path, headers, status", [
    (b"/", b"Cookie: a=1\r\nCookie: b=2\r\n", b"400"),
    (b"/", b"Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: websocket\r\n", b"400"),
    (b"/", "Cookie: lyra_studio_token=\u00e9\u00e8\r\n".encode(), b"401"),
    (b"/?token=\xe9\xff", b"", b"401"),
    (b"/", b"Cookie: \xe9=\xe9; lyra_studio_token=t\xc3\xa9\r\n", b"401"),
])
def test_ambiguous_or_non_ascii_headers_get_a_clear_4xx_not_a_500(path, headers, status):
    policy = AccessPolicy("127.0.0.1", token="the-token")
    server = start_server("127.0.0.1", 0, policy, verbose=False)
    try:
        line = _raw_status(server.get_port(), path, headers)
    finally:
        server.stop()
    assert line.split(b" ")[1] == status, line

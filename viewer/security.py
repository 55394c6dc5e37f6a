"""What a client may ask of the viewer server: origins, an access token, no share tunnel, bounded uploads.

A viewer left running on a workstation must not be something any web page can
drive. Browsers let every page open a websocket to ``localhost``; only the
``Origin`` header tells the pages apart. So:

* :class:`AccessPolicy` checks every HTTP request and websocket handshake
  *before* viser sees it: a websocket whose ``Origin`` is not the viewer's own
  address (or one allowed with ``--allow-origin``) is refused with 403; on a
  loopback bind the ``Host`` must be a loopback name too (DNS rebinding); when
  bound beyond loopback every request must carry the access token (``?token=``
  once in the browser, which then holds it in an HttpOnly, SameSite=Strict cookie);
  beyond ``max_clients`` open websockets (``--max-clients``) a new one is refused
  with 503 and a message saying so, before viser replays the scene to it.
* :func:`refuse_share` makes viser's public share tunnel unreachable from clients.
* :class:`UploadLimiter` refuses uploads on their declared size before any part
  is buffered, drops a transfer whose parts overrun, and hands every finished
  upload to its callback as its own value (viser's handle keeps one shared value).

viser 1.1 builds its websocket server inside a background thread with a
private ``process_request`` hook; :func:`start_server` wraps that hook while the
server is constructed (the hook is fixed by the time ``ViserServer()`` returns).
"""

from __future__ import annotations

import contextlib
import hmac
import http
import ipaddress
import math
import secrets
import threading
import warnings
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

import viser
import websockets.asyncio.server
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

TOKEN_COOKIE = "lyra_studio_token"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
DEFAULT_MAX_CLIENTS = 8  # every client costs sends of every buffer; a storm of them must not take the server down
SINGLE_HEADERS = ("Host", "Origin", "Upgrade", "Cookie")  # headers we read: two of one is ambiguous, so refused
MIN_UPLOAD_PART_BYTES = 1024  # viser's client sends 512 KiB parts; far more parts than this allows is hostile


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine can reach (``127.0.0.0/8``, ``::1``, localhost)."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(netloc: str, scheme: str = "http") -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or (443 if scheme in ("https", "wss") else 80)
    except ValueError:
        return None
    return (parts.hostname or "", port) if parts.hostname else None


class AccessPolicy:
    """Which requests the server answers; see the module docstring.

    ``host``: the bind address. ``allow_origins``: extra ``scheme://host:port``
    origins to accept (``*`` accepts any). ``token``: required from every
    client when set; :meth:`for_host` sets one for non-loopback binds. ``max_clients``:
    websockets open at once (None: no cap).
    """

    def __init__(self, host: str, allow_origins: list[str] | tuple[str, ...] = (), token: str | None = None,
                 max_clients: int | None = DEFAULT_MAX_CLIENTS):
        if max_clients is not None and int(max_clients) < 1:
            raise ValueError(f"max_clients must be at least 1, not {max_clients}")
        self.host = host
        self.allow_origins = {o.rstrip("/").lower() for o in allow_origins}
        self.token = token or None
        self.max_clients = None if max_clients is None else int(max_clients)
        self.refused = 0  # requests refused so far (for the log and tests)
        self._admitted: set = set()  # open websocket connections (only touched on the server's event loop)

    @classmethod
    def for_host(cls, host: str, allow_origins=(), token: str | None = None,
                 max_clients: int | None = DEFAULT_MAX_CLIENTS) -> AccessPolicy:
        """The policy for a bind address: beyond loopback, a token is always required (generated if not given)."""
        if not is_loopback(host) and not token:
            token = secrets.token_urlsafe(18)
        return cls(host, allow_origins, token, max_clients)

    def admit(self, connection) -> Response | None:
        """A refusal when ``max_clients`` websockets are open already; else ``connection`` counts as one of them.

        Called from the websocket server's event loop only (one call at a time), so the count cannot race.
        """
        from websockets.protocol import State

        self._admitted = {c for c in self._admitted if c.state is not State.CLOSED}
        if self.max_clients is not None and len(self._admitted) >= self.max_clients:
            return self._refuse(http.HTTPStatus.SERVICE_UNAVAILABLE, f"This viewer already serves {self.max_clients} "
                                "clients, its limit: close another viewer tab and reload (the server's "
                                "--max-clients sets the limit).")
        self._admitted.add(connection)
        return None

    @property
    def open_clients(self) -> int:
        """Websockets admitted and not closed yet."""
        from websockets.protocol import State

        return sum(1 for c in list(self._admitted) if c.state is not State.CLOSED)

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    # ------------------------------------------------------------ checks
    def origin_allowed(self, origin: str | None, host_header: str | None) -> bool:
        """Is a page at ``origin`` (talking to us as ``host_header``) allowed to drive the viewer?"""
        if origin is None:
            return True  # not a browser (browsers always send Origin on websockets): the token, if any, decides
        origin = origin.rstrip("/").lower()
        if "*" in self.allow_origins or origin in self.allow_origins:
            return True
        if origin == "null" or host_header is None:
            return False
        scheme = origin.partition("://")[0]
        if scheme not in ("http", "https"):
            return False
        own, theirs = _host_port(host_header), _host_port(origin.partition("://")[2], scheme)
        return own is not None and own == theirs and self.host_allowed(host_header)

    def host_allowed(self, host_header: str | None) -> bool:
        """On a loopback bind, only loopback names reach us (a rebound DNS name is someone else's page)."""
        if not self.loopback:
            return True  # reachable by other names on purpose; the token protects it
        parsed = _host_port(host_header or "")
        return parsed is not None and is_loopback(parsed[0])

    def _token_of(self, request: Request) -> tuple[str | None, bool]:
        """``(token presented, came from the query)``."""
        query = parse_qs(urlsplit(request.path).query)
        if "token" in query:
            return query["token"][0], True
        cookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            cookie.load(request.headers.get("Cookie", ""))
        return (cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None), False

    def check(self, request: Request) -> tuple[Response | None, bool]:
        """``(refusal or None, set the token cookie)`` for one HTTP request or websocket handshake.

        A request whose headers we cannot read unambiguously (a repeated Host, Origin, Upgrade or
        Cookie header, bytes that are not ASCII where a token is compared) gets a 400, never a 500.
        """
        try:
            return self._check(request)
        except (LookupError, UnicodeError, ValueError, CookieError):  # MultipleValuesError is a LookupError
            return self._refuse(http.HTTPStatus.BAD_REQUEST, "Malformed request headers."), False

    def _check(self, request: Request) -> tuple[Response | None, bool]:
        headers = request.headers
        repeated = [name for name in SINGLE_HEADERS if len(headers.get_all(name)) > 1]
        if repeated:
            return self._refuse(http.HTTPStatus.BAD_REQUEST, f"At most one {repeated[0]} header, please."), False
        host_header = headers.get("Host")
        if not self.host_allowed(host_header):
            return self._refuse(http.HTTPStatus.FORBIDDEN, "This viewer answers only to localhost."), False
        if headers.get("Upgrade", "").lower() == "websocket" and not self.origin_allowed(headers.get("Origin"), host_header):
            return self._refuse(http.HTTPStatus.FORBIDDEN, "Websocket from a foreign origin refused "
                                "(start the viewer with --allow-origin to permit it)."), False
        if self.token is None:
            return None, False
        presented, from_query = self._token_of(request)
        # surrogateescape: websockets keeps non-ASCII request bytes as surrogates, which plain encode() refuses
        if presented is None or not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self.token.encode()):
            return self._refuse(http.HTTPStatus.UNAUTHORIZED, "This viewer needs its access token: open the URL "
                                "with ?token=... that the server printed."), False
        return None, from_query

    def _refuse(self, status: http.HTTPStatus, text: str) -> Response:
        self.refused += 1
        body = (text + "\n").encode()
        headers = Headers({"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))})
        return Response(status.value, status.phrase, headers, body)

    def wrap(self, inner: Callable | None) -> Callable:
        """A websockets ``process_request`` that applies this policy, then ``inner`` (viser's static files)."""

        def process_request(connection, request: Request):
            refusal, set_cookie = self.check(request)
            if refusal is None and request.headers.get("Upgrade", "").lower() == "websocket":
                refusal = self.admit(connection)
            if refusal is not None:
                return refusal
            response = inner(connection, request) if inner is not None else None
            if set_cookie and response is not None:
                response.headers["Set-Cookie"] = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            return response

        return process_request


_serve_lock = threading.Lock()


def start_server(host: str, port: int, policy: AccessPolicy, **kwargs) -> viser.ViserServer:
    """A ``viser.ViserServer`` whose HTTP and websocket handshakes all pass ``policy`` first; share refused."""
    original = websockets.asyncio.server.serve

    def guarded_serve(*args, **serve_kwargs):
        serve_kwargs["process_request"] = policy.wrap(serve_kwargs.get("process_request"))
        return original(*args, **serve_kwargs)

    # viser calls serve() in its server thread before ViserServer() returns (it waits for the bind),
    # so the swap is in place exactly for that call; the lock keeps two constructions apart.
    with _serve_lock:
        websockets.asyncio.server.serve = guarded_serve
        try:
            server = viser.ViserServer(host=host, port=port, **kwargs)
        finally:
            websockets.asyncio.server.serve = original
    refuse_share(server)
    return server


# ----------------------------------------------------------------- share tunnel
def refuse_share(server: viser.ViserServer) -> None:
    """Make viser's public share tunnel unreachable: client requests and ``request_share_url`` both refuse."""
    from viser import _messages

    if hasattr(server, "share_refusals"):
        return  # already refused (start_server, then ViewerApp)
    infra = server._websock_server
    for message in (_messages.ShareUrlRequest, _messages.ShareUrlDisconnect):
        with contextlib.suppress(AssertionError, KeyError):
            infra.unregister_handler(message)  # viser's handlers would open a tunnel to a public relay
    refusals = {"count": 0}

    def refuse_request(client_id, message) -> None:
        refusals["count"] += 1
        print("[lyra-studio] refused a share-link request: this viewer never opens a public tunnel", flush=True)

    def request_share_url(verbose: bool = True) -> None:
        refusals["count"] += 1
        return None

    infra.register_handler(_messages.ShareUrlRequest, refuse_request)
    server.request_share_url = request_share_url  # instance attribute: shadows the method for every caller
    server.share_refusals = refusals


# ----------------------------------------------------------------- uploads
class UploadLimiter:
    """Bounds browser uploads while they arrive and delivers each finished one to its own callback call.

    Each upload is at most ``max_bytes``; all uploads together, those arriving and those whose
    callback still holds their bytes, at most ``max_total_bytes`` (60 transfers of 8 MiB held
    377 MB before this cap): a transfer that would pass it is refused at its start. ``on_refused(client_id, file name, declared bytes, reason)`` is
    told about refused uploads (``reason`` is None for the per-upload limit). One limiter serves a
    server: constructing another for the same server updates the first (and returns it).
    """

    def __new__(cls, server: viser.ViserServer, max_bytes: int, on_refused=None, max_total_bytes: int | None = None):
        existing = getattr(server, "_lyra_upload_limiter", None)
        if existing is not None:
            existing.max_bytes, existing.on_refused = int(max_bytes), on_refused
            existing.max_total_bytes = int(max_total_bytes if max_total_bytes is not None else 2 * max_bytes)
            return existing
        limiter = super().__new__(cls)
        limiter._installed = False
        server._lyra_upload_limiter = limiter
        return limiter

    def __init__(self, server: viser.ViserServer, max_bytes: int,
                 on_refused: Callable[..., None] | None = None, max_total_bytes: int | None = None):
        from viser import _messages

        if self._installed:
            return
        self._installed = True
        self.server = server
        self.max_bytes = int(max_bytes)
        self.max_total_bytes = int(max_total_bytes if max_total_bytes is not None else 2 * max_bytes)
        self.on_refused = on_refused
        self._held = 0  # bytes of delivered uploads whose callbacks are still running
        self._held_lock = threading.Lock()
        self._callbacks: dict[str, Callable] = {}  # upload button uuid -> callback(client_id, UploadedFile)
        gui = server.gui
        self._gui = gui
        self._start = gui._handle_file_transfer_start
        self._part = gui._handle_file_transfer_part
        infra = gui._websock_interface
        infra.unregister_handler(_messages.FileTransferStartUpload, self._start)
        infra.unregister_handler(_messages.FileTransferPart, self._part)
        infra.register_handler(_messages.FileTransferStartUpload, self._guarded_start)
        infra.register_handler(_messages.FileTransferPart, self._guarded_part)
        self._finish = gui._finish_file_upload
        gui._finish_file_upload = self._deliver  # instance attribute: viser calls self._finish_file_upload
        # viser drops a departed client's transfers only once it had registered the client; a connection
        # that starts a transfer and leaves before that would leave its buffer (and its share of the cap).
        server._websock_server.on_client_disconnect(self._drop_transfers_of)

    def _drop_transfers_of(self, connection) -> None:
        states = self._gui._current_file_upload_states
        for uuid, state in list(states.items()):
            if state.get("client_id") == connection.client_id:
                states.pop(uuid, None)

    def on_upload(self, handle, callback: Callable) -> None:
        """Call ``callback(client_id, viser.UploadedFile)`` for every upload to ``handle`` (in viser's pool)."""
        self._callbacks[handle._impl.uuid] = callback

    def _refuse(self, client_id, name: str, size: int, reason: str | None = None) -> None:
        if self.on_refused is not None:
            if reason is None:
                self.on_refused(client_id, name, size)
            else:
                self.on_refused(client_id, name, size, reason)

    def in_flight_bytes(self) -> int:
        """Bytes all uploads hold now: declared sizes of transfers arriving plus delivered ones in callbacks.

        A transfer whose client disconnects is dropped (:meth:`_drop_transfers_of`), and its share with it.
        """
        states = list(self._gui._current_file_upload_states.values())
        return sum(int(state.get("total_bytes", 0)) for state in states) + self._held

    def _guarded_start(self, client_id, message) -> None:
        size, parts = int(message.size_bytes), int(message.part_count)
        most_parts = max(1, math.ceil(size / MIN_UPLOAD_PART_BYTES)) if size > 0 else 0
        if size > self.max_bytes or size < 0 or parts < 0 or parts > most_parts:
            self._refuse(client_id, message.filename, size)  # nothing buffered: later parts find no transfer
            return
        with self._held_lock:  # check and start as one step, so concurrent starts cannot both fit
            busy = self.in_flight_bytes()
            if busy + size > self.max_total_bytes:
                self._refuse(client_id, message.filename, size,
                             f"the viewer is already receiving or opening {busy / 2**20:.1f} MiB of uploads "
                             f"(at most {self.max_total_bytes / 2**20:g} MiB at once); try again when they are done")
                return
            self._start(client_id, message)

    def _guarded_part(self, client_id, message) -> None:
        states = self._gui._current_file_upload_states
        state = states.get(message.transfer_uuid)
        if state is not None and state["client_id"] != client_id:
            return  # another client's transfer
        if state is not None:
            with state["lock"]:
                overrun = state["transferred_bytes"] + len(message.content) > min(state["total_bytes"], self.max_bytes)
            if overrun:
                states.pop(message.transfer_uuid, None)
                self._refuse(client_id, state["filename"], state["transferred_bytes"] + len(message.content))
                return
        self._part(client_id, message)

    def _deliver(self, client_id, transfer_uuid: str, source_component_uuid: str | None) -> None:
        callback = self._callbacks.get(source_component_uuid or "")
        if callback is None:
            self._finish(client_id, transfer_uuid, source_component_uuid)
            return
        state = self._gui._current_file_upload_states.pop(transfer_uuid, None)
        if state is None:
            return
        content = b"".join(state["parts"][i] for i in range(state["part_count"]))
        if len(content) != state["total_bytes"]:
            warnings.warn(f"dropping upload {state['filename']!r}: {len(content)} bytes, {state['total_bytes']} declared",
                          stacklevel=1)
            return
        # Each upload is its own value, handed to its own call: viser's shared handle.value is not read.
        # Its bytes count against the total until the callback returns (it writes them to disk first).
        with self._held_lock:
            self._held += len(content)

        def deliver() -> None:
            try:
                callback(client_id, viser.UploadedFile(state["filename"], content))
            finally:
                with self._held_lock:
                    self._held -= len(content)

        self._gui._thread_executor.submit(deliver)

"""Lyra Studio viewer: ``python launch.py [SCENE ...] [--host 127.0.0.1] [--port 8080] [--output-dir DIR]``.

Opens each SCENE (PLY, compressed PLY, .splat, Lyra tensor file, sequence
folder or zip of frames); with none, the bundled demo scenes (built once into
the cache folder). Binds 127.0.0.1 unless ``--host`` says otherwise. Runs
without a TTY; Ctrl-C or SIGTERM stops it cleanly (exit status 0), even with
loads stuck in the kernel.

Who may drive it (:mod:`viewer.security`): websockets only from the viewer's
own origin (``--allow-origin`` adds others); beyond loopback, only clients with
the access token (``--token``, else generated and printed in the URL); at most
``--max-clients`` at once (default 8); never a share tunnel. Clients open paths only inside the command-line scenes and
``--data-dir`` folders unless ``--open-anywhere``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # scenes/ (the demo builder) sits beside this file and is not an installed package
    sys.path.insert(0, str(ROOT))

DEFAULT_CACHE = Path(os.environ.get("LYRA_STUDIO_CACHE", Path.home() / ".cache" / "lyra-studio"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="launch.py", description="Lyra Studio: view, edit and export 3D/4D Gaussian scenes.")
    parser.add_argument("scenes", nargs="*", help="scene files or sequence folders to open (default: the demo scenes)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--output-dir", default="exports", help="folder that server-side exports are confined to")
    parser.add_argument("--max-upload-mb", type=float, default=1024.0, help="largest browser upload accepted, in MiB")
    parser.add_argument("--max-upload-total-mb", type=float, default=None, metavar="MB",
                        help="memory all uploads in flight may hold together, in MiB (default: twice --max-upload-mb)")
    parser.add_argument("--max-splats", type=int, default=None, metavar="N",
                        help="refuse scene files declaring more splats than N, from their headers "
                             "(default 33554432; see lyra/limits.py)")
    parser.add_argument("--max-decoded-mb", type=float, default=None, metavar="MB",
                        help="refuse files (scenes, images, videos, depth) that would take more than MB MiB once "
                             "decoded, from their headers (default 4096)")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where the demo scenes are built")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="also accept websocket connections from pages at ORIGIN (e.g. http://myhost:3000; "
                             "'*' for any page: only on a trusted network); repeatable")
    parser.add_argument("--token", default=None,
                        help="access token clients must present (default: none on loopback, generated otherwise)")
    parser.add_argument("--max-clients", type=int, default=8, metavar="N",
                        help="browser tabs/websocket clients served at once (default 8); more are refused with a "
                             "message until one leaves")
    parser.add_argument("--data-dir", action="append", default=[], metavar="DIR",
                        help="folder whose scenes clients may open by path (repeatable; the command-line "
                             "scenes are always allowed)")
    parser.add_argument("--open-anywhere", action="store_true",
                        help="let clients open any server path the process can read (trusted clients only)")
    parser.add_argument("--open-timeout", type=float, default=300.0, metavar="S",
                        help="give up an Open-by-path load after S seconds (default 300)")
    args = parser.parse_args(argv)
    for flag in ("max_splats", "max_decoded_mb", "max_upload_total_mb"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, found {value}")
    return args


def start_viewer(args: argparse.Namespace):
    """Start the server and open the scenes; returns the :class:`viewer.app.ViewerApp`."""
    from lyra.limits import set_limits
    from viewer.app import ViewerApp
    from viewer.security import AccessPolicy, start_server

    if args.max_clients < 1:
        raise SystemExit(f"launch.py: --max-clients must be at least 1, not {args.max_clients}")
    set_limits(max_splats=args.max_splats, max_decoded_mb=args.max_decoded_mb)  # None keeps the library default
    policy = AccessPolicy.for_host(args.host, args.allow_origin, args.token, max_clients=args.max_clients)
    server = start_server(args.host, args.port, policy, verbose=False)
    paths = [Path(p) for p in args.scenes]
    app = ViewerApp(server, output_dir=args.output_dir, max_upload_mb=args.max_upload_mb,
                    max_upload_total_mb=args.max_upload_total_mb,
                    data_dirs=[*args.data_dir, *paths], open_anywhere=args.open_anywhere,
                    open_timeout_s=args.open_timeout)
    app.access_policy = policy
    app.set_background((255, 255, 255))
    if paths:
        for path in paths:
            app.action(f"Open {path}", lambda p=path: app.open_scene(p))
        return app
    from scenes.build_demo import ensure_demo_scenes

    static_path, dynamic_path = ensure_demo_scenes(Path(args.cache_dir))
    app.paths.add(static_path)
    app.paths.add(dynamic_path)
    static = app.action("Open demo", lambda: app.open_scene(static_path))
    app.action("Open demo", lambda: app.open_scene(dynamic_path))
    if static is not None:  # the two demos share a stage: show the 4D one, the static one is a click away
        app.action("Hide static demo", lambda: app.state.set_visible(static, False))
    return app


def viewer_url(host: str, port: int, token: str | None) -> str:
    """The URL to print: ``localhost`` for loopback binds, the token as a query parameter when one is needed."""
    from viewer.security import is_loopback

    shown = "localhost" if is_loopback(host) else (socket.gethostname() if host in ("0.0.0.0", "::", "") else host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}" + (f"/?token={token}" if token else "")


def shutdown(app, grace_s: float = 5.0) -> None:
    """Stop the viewer: cancel jobs, stop the server, wait at most ``grace_s`` for running jobs."""
    app.stop()
    app.server.stop()
    deadline = time.monotonic() + grace_s
    for job in list(app.jobs):
        job.wait(max(0.0, deadline - time.monotonic()))


def _stuck_threads() -> list[str]:
    """Non-daemon threads still alive (viser's callback pool among them) that would block interpreter exit."""
    return [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    app = start_viewer(args)
    policy = app.access_policy
    print(f"Lyra Studio running at {viewer_url(app.server.get_host(), app.server.get_port(), policy.token)}", flush=True)
    if not policy.loopback:
        print(f"WARNING: bound to {args.host}: other machines can reach this viewer. Only clients with the access "
              "token in the URL above can use it; share that URL only with people you trust.", flush=True)
    with app.state.lock:
        names = list(app.state.layers)
    print(f"Loaded: {', '.join(names) or 'nothing'}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        shutdown(app)
    print("Lyra Studio stopped.", flush=True)
    stuck = _stuck_threads()
    if stuck:
        # A callback thread blocked in the kernel (a hung network read) would keep the interpreter from
        # exiting forever: it joins every pool thread. Leave now; everything we own is already stopped.
        print(f"Leaving {len(stuck)} stuck thread(s) behind.", flush=True)
        sys.stdout.flush()
        os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Lyra Studio viewer: ``python launch.py [SCENE ...] [--host 127.0.0.1] [--port 8080] [--output-dir DIR]``.

Opens each SCENE (PLY, compressed PLY, .splat, Lyra tensor file, sequence
folder or zip of frames); with none, the bundled demo scenes (built once into
the cache folder). Binds 127.0.0.1 unless ``--host`` says otherwise. Runs
without a TTY; Ctrl-C or SIGTERM stops it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
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
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE), help="where the demo scenes are built")
    return parser.parse_args(argv)


def start_viewer(args: argparse.Namespace):
    """Start the server and open the scenes; returns the :class:`viewer.app.ViewerApp`."""
    import viser

    from viewer.app import ViewerApp

    server = viser.ViserServer(host=args.host, port=args.port, verbose=False)
    app = ViewerApp(server, output_dir=args.output_dir, max_upload_mb=args.max_upload_mb)
    app.set_background((255, 255, 255))
    paths = [Path(p) for p in args.scenes]
    if paths:
        for path in paths:
            app.action(f"Open {path}", lambda p=path: app.open_scene(p))
        return app
    from scenes.build_demo import ensure_demo_scenes

    static_path, dynamic_path = ensure_demo_scenes(Path(args.cache_dir))
    static = app.action("Open demo", lambda: app.open_scene(static_path))
    app.action("Open demo", lambda: app.open_scene(dynamic_path))
    if static is not None:  # the two demos share a stage: show the 4D one, the static one is a click away
        app.action("Hide static demo", lambda: app.state.set_visible(static, False))
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    app = start_viewer(args)
    port = app.server.get_port()
    host = app.server.get_host()
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    print(f"Lyra Studio running at http://{shown}:{port}", flush=True)
    with app.state.lock:
        names = list(app.state.layers)
    print(f"Loaded: {', '.join(names) or 'nothing'}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        app.stop()
        app.server.stop()
    print("Lyra Studio stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

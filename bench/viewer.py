"""Viewer benchmark (server-side work only); prints JSON.

* 1M splats: box select, soft delete and undo through :class:`viewer.state.AppState`
  (target: each under 50 ms);
* packing viser's buffer for 1M splats with :mod:`viewer.splat_buffer`, against
  viser's own conversion measured in the same run (its ``set_gaussians``
  packers, fed the ``[N, 3, 3]`` covariances they need) (target: within 1.5x);
* undo-history bytes after 20 colour edits of one box selection on a 1M-splat
  SH-3 scene (target: under 5% of the scene's size), against the whole-SH copies
  the history used to keep;
* a 4D frame switch at 200k splats per frame with a real viser server on
  localhost and a websocket client connected: from the frame change until the
  client has received the whole new buffer (target: under 40 ms), plus the
  cold switch (first visit of a frame: packing included).

Usage: ``python bench/viewer.py [--splats 1000000] [--frame-splats 200000] [--repeats 7]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name
# ("viewer") would shadow the viewer package: put the repository root there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
import torch  # noqa: E402


def timed(fn, repeats: int, setup=None) -> float:
    """Median wall time of ``fn()`` in milliseconds (``setup()`` runs untimed before each call)."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def random_gaussians(n: int, seed: int = 0):
    """Degree-0 splats (the viewer shows base colour) spread over about [-1, 1]^3."""
    from lyra.scene.synthetic import random_gaussians as synthetic

    return synthetic(n, seed=seed, sh_degree=0, spread=0.6, max_scale=0.03, sh_std=0.5)


def bench_edits(n: int, repeats: int) -> dict:
    from viewer import edit_actions as act
    from viewer.state import AppState

    state = AppState()
    state.add_scene(random_gaussians(n), "bench")
    box = dict(center=(0.0, 0.0, 0.0), wxyz=(0.9238795, 0.0, 0.3826834, 0.0), half_extents=(0.4, 0.5, 0.3))
    select_ms = timed(lambda: act.select_box(state, **box), repeats)
    delete_ms = timed(state.delete_selected, repeats, setup=lambda: (state.undo(), act.select_box(state, **box)))
    state.undo()
    undo_ms = timed(state.undo, repeats, setup=lambda: (act.select_box(state, **box), state.delete_selected()))
    # The same edits including the rebuilt display buffer (deleted rows dropped, selection tinted),
    # i.e. everything before the send; the base buffer is already packed, as in the viewer.
    state.display_buffer("bench")
    delete_shown_ms = timed(lambda: (state.delete_selected(), state.display_buffer("bench")), repeats,
                            setup=lambda: (state.undo(), act.select_box(state, **box), state.display_buffer("bench")))
    state.undo()
    undo_shown_ms = timed(lambda: (state.undo(), state.display_buffer("bench")), repeats,
                          setup=lambda: (act.select_box(state, **box), state.delete_selected(), state.display_buffer("bench")))
    return {"splats": n, "box_select_ms": round(select_ms, 2), "delete_ms": round(delete_ms, 2),
            "undo_ms": round(undo_ms, 2), "delete_with_display_buffer_ms": round(delete_shown_ms, 2),
            "undo_with_display_buffer_ms": round(undo_shown_ms, 2), "target_ms": 50,
            "selected": int(state.current().selected.sum())}


def bench_undo_history(n: int, edits: int = 20) -> dict:
    """Undo-history bytes after ``edits`` colour edits of one box selection on an SH-3 scene (target < 5%).

    The baseline is what the history held before issue 9: one whole SH tensor per colour edit
    (``edits * sh bytes``; computed, not allocated: 20 of them would be ~3.8 GB at 1M splats).
    """
    from lyra.scene.synthetic import random_gaussians as synthetic
    from viewer import edit_actions as act
    from viewer.state import AppState

    state = AppState()
    scene = synthetic(n, seed=0, sh_degree=3, spread=0.6, max_scale=0.03, sh_std=0.5)
    scene_bytes = sum(t.numel() * t.element_size() for t in (scene.means, scene.quats, scene.scales,
                                                             scene.opacities, scene.sh))
    state.add_scene(scene, "bench")
    box = dict(center=(0.0, 0.0, 0.0), wxyz=(0.9238795, 0.0, 0.3826834, 0.0), half_extents=(0.4, 0.5, 0.3))
    selected = act.select_box(state, **box)
    colour_edits = [lambda: act.brightness(state, 1.05), lambda: act.tint(state, (1.0, 0.3, 0.2), 0.1),
                    lambda: act.saturation(state, 1.1)]
    start = time.perf_counter()
    for i in range(edits):
        colour_edits[i % len(colour_edits)]()
    edit_ms = (time.perf_counter() - start) * 1000 / edits
    history = state.history_bytes()
    start = time.perf_counter()
    state.undo()
    undo_ms = (time.perf_counter() - start) * 1000
    baseline = edits * scene.sh.numel() * scene.sh.element_size()
    return {"splats": n, "sh_degree": 3, "colour_edits": edits, "selected": selected,
            "selected_fraction": round(selected / n, 4), "scene_bytes": scene_bytes,
            "undo_history_bytes": history, "undo_history_fraction_of_scene": round(history / scene_bytes, 4),
            "target_fraction": 0.05, "baseline_whole_sh_copies_bytes": baseline,
            "baseline_fraction_of_scene": round(baseline / scene_bytes, 2),
            "colour_edit_ms": round(edit_ms, 1), "undo_last_colour_edit_ms": round(undo_ms, 1)}


def bench_packing(n: int, repeats: int) -> dict:
    from viser._scene_handles import GaussianSplatHandle

    from viewer.splat_buffer import pack_gaussians

    g = random_gaussians(n)

    def viser_conversion():
        buffer = np.zeros((n, 8), dtype=np.uint32)
        GaussianSplatHandle._pack_centers(buffer, g.means.numpy())
        GaussianSplatHandle._pack_covariances(buffer, g.covariances().numpy())
        GaussianSplatHandle._pack_rgba(buffer, rgbs=g.rgb().numpy(), opacities=g.opacities.numpy()[:, None])
        return buffer

    covariances = g.covariances().numpy()
    rgb, opacities = g.rgb().numpy(), g.opacities.numpy()[:, None]

    def viser_packers_only():
        buffer = np.zeros((n, 8), dtype=np.uint32)
        GaussianSplatHandle._pack_centers(buffer, g.means.numpy())
        GaussianSplatHandle._pack_covariances(buffer, covariances)
        GaussianSplatHandle._pack_rgba(buffer, rgbs=rgb, opacities=opacities)

    ours = timed(lambda: pack_gaussians(g), repeats)
    theirs = timed(viser_conversion, repeats)
    packers = timed(viser_packers_only, repeats)
    return {"splats": n, "ours_ms": round(ours, 1), "viser_conversion_ms": round(theirs, 1),
            "viser_packers_only_ms": round(packers, 1),
            "ratio_ours_over_viser": round(ours / theirs, 3), "target_ratio": 1.5}


def bench_frame_switch(per_frame: int, num_frames: int, repeats: int) -> dict:
    import viser
    from websockets.sync.client import connect

    from lyra.scene import GaussianSequence
    from viewer.scene_sync import SceneSync
    from viewer.state import AppState

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    state = AppState()
    state.add_scene(GaussianSequence([random_gaussians(per_frame, seed=i) for i in range(num_frames)]), "clip")
    sync = SceneSync(server, state)
    expected_bytes = per_frame * 32
    received: list[tuple[float, int]] = []
    arrived = threading.Event()

    ws = connect(f"ws://127.0.0.1:{server.get_port()}", subprotocols=[f"viser-v{viser.__version__}"], max_size=None)

    def listen():
        try:
            while True:
                message = ws.recv()
                size = len(message)
                received.append((time.perf_counter(), size))
                if size >= expected_bytes:
                    arrived.set()
        except Exception:
            return

    threading.Thread(target=listen, daemon=True).start()
    deadline = time.time() + 10
    while not server.get_clients() and time.time() < deadline:
        time.sleep(0.05)
    sync.sync()  # creates the node with frame 0
    arrived.wait(10)
    time.sleep(0.3)

    def switch_to(i: int) -> float:
        arrived.clear()
        start = time.perf_counter()
        state.set_frame(i)
        sync.sync()
        if not arrived.wait(10):
            raise RuntimeError("the websocket client did not receive the frame")
        return (time.perf_counter() - start) * 1000

    cold = [switch_to(i) for i in range(1, num_frames)]  # first visit: packs the frame
    warm = []
    for _ in range(repeats):
        for i in range(num_frames):
            if i != state.frame:
                warm.append(switch_to(i))
        time.sleep(0.05)
    ws.close()
    server.stop()
    return {"splats_per_frame": per_frame, "frames": num_frames, "message_bytes": expected_bytes,
            "warm_switch_ms_median": round(statistics.median(warm), 2), "warm_switch_ms_max": round(max(warm), 2),
            "cold_switch_ms_median": round(statistics.median(cold), 2), "target_ms": 40,
            "measured": "set_frame + sync until a connected websocket client received the whole buffer"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splats", type=int, default=1_000_000)
    parser.add_argument("--frame-splats", type=int, default=200_000)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--history-splats", type=int, default=1_000_000, help="SH-3 scene for the undo-history figure")
    parser.add_argument("--only", choices=["edits", "packing", "frame_switch", "undo_history"], default=None)
    args = parser.parse_args()
    # viser prints a banner (and libraries may log) on stdout; only the JSON result may go there.
    with contextlib.redirect_stdout(sys.stderr):
        benches = {
            "edits": lambda: bench_edits(args.splats, args.repeats),
            "packing": lambda: bench_packing(args.splats, args.repeats),
            "frame_switch": lambda: bench_frame_switch(args.frame_splats, args.frames, args.repeats),
            "undo_history": lambda: bench_undo_history(args.history_splats),
        }
        result = {"torch_threads": torch.get_num_threads()}
        result.update({name: run() for name, run in benches.items() if args.only in (None, name)})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""A 24-frame 4D sequence of 2M splats per frame, at SH 0 and SH 3: lazy open, bounded memory, playback.

Prints one JSON object, one entry per SH degree. The data is made on the fly
in a temp folder and deleted: three random 2M-splat frames (PLY, ~130 MB each
at SH 0, ~500 MB at SH 3) hard-linked in turn as the frame files (consecutive
frames differ, as viser skips an unchanged buffer; the page cache serves
repeats, so this measures the viewer, not the disk), plus a manifest. A child
process per SH degree measures with the viewer at its default budgets and a
real viser server on localhost with a websocket client connected:

- ``open_s``: ``lyra.scene.load(folder)`` (headers only);
- ``baseline_prepare_ms``: the previous route for one unprepared frame, in the
  same run: read the whole frame, rank all splats by a full stable sort,
  gather and pack the playing budget's splats;
- ``prepare_unprepared_ms``: the viewer's route for the same (rank from the
  file's opacity/scale columns, partial selection, read and pack only the
  chosen rows), median over frames never prepared before;
- ``scrub_far_ms``: paused at frame 0, the slider set to frame 12 (never
  prepared): until the websocket client received its budgeted buffer;
  ``full_detail_after_idle_ms``: then idle: until it received the full-detail
  buffer (every splat up to the full-detail cap);
- ``first_loop_fps`` / ``second_loop_fps``: playback at 24 fps as the Time
  panel runs it (step, send, prefetch the next two frames on the background
  thread); ``second_loop_switch_ms``: time from the frame change until the
  client received the frame (median and max), target 40;
- ``buffer_cache_mb`` against ``buffer_cache_budget_mb`` after two loops, the
  lazy-frame cache, the process's own resident memory while playing (RssAnon)
  and its peak RSS (which counts the page cache's file pages it touched).
Usage: ``python bench/big_sequence.py [--frames 24] [--splats 2000000] [--sh 0 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

DISTINCT_FRAMES = 3  # viser skips a buffer equal to the one shown: consecutive frames must differ


def make_folder(folder: Path, frames: int, splats: int, sh_degree: int) -> None:
    from lyra.scene import Gaussians, save

    for k in range(min(frames, DISTINCT_FRAMES)):
        gen = torch.Generator().manual_seed(k)
        g = Gaussians.from_rgb(torch.randn(splats, 3, generator=gen), torch.randn(splats, 4, generator=gen),
                               torch.rand(splats, 3, generator=gen) * 0.02 + 0.002, torch.rand(splats, generator=gen),
                               torch.rand(splats, 3, generator=gen), sh_degree=sh_degree)
        if sh_degree:
            g.sh[:, 1:] = torch.randn(splats, g.sh.shape[1] - 1, 3, generator=gen) * 0.1
        save(g, folder / f"frame_{k:05d}.ply")
        del g
    for i in range(DISTINCT_FRAMES, frames):
        os.link(folder / f"frame_{i % DISTINCT_FRAMES:05d}.ply", folder / f"frame_{i:05d}.ply")
    names = [f"frame_{i:05d}.ply" for i in range(frames)]
    manifest = {"format": "lyra-sequence", "version": 1, "fps": 24.0, "frames": names, "times": [i / 24 for i in range(frames)]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def peak_rss_mb() -> float:
    """Peak resident set (it counts mapped file pages too, which the page cache shares)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def anon_rss_mb() -> float:
    """Resident memory the process owns (heap, tensors, buffers), without mapped file pages."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    """A websocket client of a viser server that notes when a message of at least ``expect`` bytes arrives."""

    def __init__(self, server) -> None:
        import viser
        from websockets.sync.client import connect

        self.expect, self.arrived = 1 << 62, threading.Event()
        self.ws = connect(f"ws://127.0.0.1:{server.get_port()}", subprotocols=[f"viser-v{viser.__version__}"], max_size=None)
        threading.Thread(target=self._listen, daemon=True).start()
        deadline = time.time() + 30
        while not server.get_clients() and time.time() < deadline:
            time.sleep(0.05)

    def _listen(self) -> None:
        try:
            while True:
                if len(self.ws.recv()) >= self.expect:
                    self.arrived.set()
        except Exception:  # noqa: BLE001 - closed at the end
            return

    def expect_splats(self, splats: int) -> None:
        self.arrived.clear()
        self.expect = 32 * splats

    def wait(self) -> None:
        if not self.arrived.wait(120):
            raise RuntimeError("the websocket client did not receive the frame")


def old_prepare_ms(seq, index: int, budget: int, view: tuple | None) -> float:
    """The previous route for one unprepared frame: whole read, full stable sort, pack the chosen splats
    (and bake their SH for ``view``)."""
    from viewer.frame_buffers import display_from_base
    from viewer.splat_buffer import pack_gaussians

    start = time.perf_counter()
    g = seq.frames._loaders[index]()  # a fresh read, as before (the cache is not the point here)
    score = g.opacities * g.scales.prod(1).clamp(min=1e-30).pow(2.0 / 3.0)
    order = torch.argsort(score, descending=True, stable=True)
    subset = g[order[:budget].sort().values]
    display_from_base(pack_gaussians(subset), subset, torch.zeros(budget, dtype=torch.bool),
                      torch.zeros(budget, dtype=torch.bool), view)
    return 1000 * (time.perf_counter() - start)


def measure(folder: Path) -> dict:
    here = Path(__file__).resolve().parent  # bench/viewer.py would shadow the viewer package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    import viser

    from lyra.scene import load
    from viewer.scene_sync import SceneSync
    from viewer.state import AppState

    start = time.perf_counter()
    seq = load(folder)
    open_s = time.perf_counter() - start
    frames = len(seq)
    state = AppState()
    view = (0.0, 0.0, -5.0) if seq.sh_degree > 0 else None  # the Render panel bakes SH for the view by default
    state.set_view_position(view)
    policy = state.display_policy()
    baseline = [old_prepare_ms(seq, i, policy.playing, view) for i in (1, 2, 3)]

    fresh = AppState()  # nothing prepared: every frame is cut on demand, as on a first play
    fresh.set_view_position(view)
    fresh.add_scene(seq, "clip")
    prepare = []
    for i in (1, 2, 3):
        fresh.set_frame(i)
        (item,) = fresh.send_plan()
        start = time.perf_counter()
        fresh.send_buffer(item)
        prepare.append(1000 * (time.perf_counter() - start))
    del fresh

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    state.add_scene(seq, "clip")
    sync = SceneSync(server, state)
    client = Client(server)
    (item,) = state.send_plan()
    client.expect_splats(item.share)
    sync.sync()
    client.wait()

    def switch_to(index: int) -> float:  # what the Time panel does on a slider change or a play tick
        start = time.perf_counter()
        state.set_frame(index)
        (item,) = state.send_plan()
        client.expect_splats(item.share)
        sync.sync()
        client.wait()
        return 1000 * (time.perf_counter() - start)

    far = frames // 2
    scrub_ms = switch_to(far)
    sync.stop()  # this bench settles by hand, at once
    state.settle(state.version)
    start = time.perf_counter()
    (item,) = state.send_plan()
    client.expect_splats(item.share)
    sync.sync()
    client.wait()
    full_detail_ms, full_detail_splats = 1000 * (time.perf_counter() - start), item.share
    state.set_frame(0)

    anon = [anon_rss_mb()]

    def play_loop() -> tuple[float, list[float]]:
        state.set_playing(True)
        switches, start, tick = [], time.perf_counter(), time.perf_counter()
        for i in range(frames):
            switches.append(switch_to(i))
            anon.append(anon_rss_mb())
            state.prefetch(ahead=2)
            tick += 1 / 24
            time.sleep(max(0.0, tick - time.perf_counter()))
            tick = max(tick, time.perf_counter() - 0.5)
        return frames / (time.perf_counter() - start), switches

    first_fps, first = play_loop()
    second_fps, second = play_loop()
    client.ws.close()
    server.stop()
    return {
        "frames": frames, "splats_per_frame": seq.num_gaussians[0], "sh_degree": seq.sh_degree, "open_s": round(open_s, 3),
        "sh_baked_for": view,
        "playing_budget": policy.playing, "paused_budget": policy.paused, "full_detail_cap": policy.full_detail_cap,
        "baseline_prepare_ms": round(statistics.median(baseline), 1),
        "prepare_unprepared_ms": round(statistics.median(prepare), 1), "prepare_target_ms": 200,
        "scrub_far_ms": round(scrub_ms, 1), "scrub_target_ms": 300,
        "full_detail_after_idle_ms": round(full_detail_ms, 1), "full_detail_splats": full_detail_splats,
        "first_loop_fps": round(first_fps, 1), "first_loop_switch_ms_median": round(statistics.median(first), 1),
        "second_loop_fps": round(second_fps, 1), "second_loop_switch_ms_median": round(statistics.median(second), 1),
        "second_loop_switch_ms_max": round(max(second), 1), "switch_target_ms": 40,
        "buffer_cache_mb": round(state.cached_buffer_bytes() / 2**20, 1),
        "buffer_cache_budget_mb": round(state.buffer_cache_bytes / 2**20, 1),
        "lazy_frame_cache_mb": round(seq.frames.nbytes / 2**20, 1),
        "lazy_frame_cache_budget_mb": round(seq.frames.budget_bytes / 2**20, 1),
        "anon_rss_mb_while_playing_max": round(max(anon), 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "frame_reads": seq.frames.reads,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--splats", type=int, default=2_000_000)
    parser.add_argument("--sh", type=int, nargs="+", default=[0, 3])
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        with contextlib.redirect_stdout(sys.stderr):  # viser's banner; only the JSON goes to stdout
            result = measure(args.measure)
        print(json.dumps(result))
        return
    results = {"torch_threads": torch.get_num_threads(), "load_average_1min_before": os.getloadavg()[0]}
    for degree in args.sh:
        with tempfile.TemporaryDirectory(prefix="lyra-bench-seq-") as tmp:
            folder = Path(tmp) / "clip"
            folder.mkdir()
            start = time.perf_counter()
            make_folder(folder, args.frames, args.splats, degree)
            made_s = time.perf_counter() - start
            child = subprocess.run([sys.executable, __file__, "--measure", str(folder)], capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            if child.returncode != 0:
                sys.exit(f"measuring failed:\n{child.stderr[-3000:]}")
            result = json.loads(child.stdout.strip().splitlines()[-1])
        result["generate_s"] = round(made_s, 1)
        results[f"sh{degree}"] = result
    results["load_average_1min_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

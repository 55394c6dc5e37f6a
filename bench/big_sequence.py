"""A 24-frame 4D sequence of 2M splats per frame: lazy open, bounded memory, frame switches in the viewer.

Prints one JSON object. The data is made on the fly in a temp folder and
deleted: one random 2M-splat frame (SH degree 0, PLY, ~130 MB) hard-linked as
every frame file (the reader reads each file; the page cache serves repeats),
plus a manifest. A child process then measures, so its peak RSS is the
sequence's alone:
- ``open_s``: ``lyra.scene.load(folder)`` (headers only);
- ``peak_rss_mb`` while walking every frame with a two-frame cache, against
  ``frame_mb`` (one frame's tensors) and ``baseline_eager_mb`` (all frames in memory);
- ``switch_at_budget_ms``: the viewer's playing path for the next frame, after
  ``AppState.prefetch`` prepared it on the background thread as playback does
  (``prepare_next_in_background_ms``: read the frame, rank, pack the 400k cut):
  ``set_frame`` + ``send_buffer``, median over frames;
- ``full_detail_switch_ms``: paused with the budget above the frame size: the
  frame (already read) packed whole, all 2M splats.
Usage: ``python bench/big_sequence.py [--frames 24] [--splats 2000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def make_folder(folder: Path, frames: int, splats: int) -> None:
    from lyra.scene import Gaussians, save

    gen = torch.Generator().manual_seed(0)
    g = Gaussians.from_rgb(torch.randn(splats, 3, generator=gen), torch.randn(splats, 4, generator=gen),
                           torch.rand(splats, 3, generator=gen) * 0.02 + 0.002, torch.rand(splats, generator=gen),
                           torch.rand(splats, 3, generator=gen))
    save(g, folder / "frame_00000.ply")
    for i in range(1, frames):
        os.link(folder / "frame_00000.ply", folder / f"frame_{i:05d}.ply")
    names = [f"frame_{i:05d}.ply" for i in range(frames)]
    manifest = {"format": "lyra-sequence", "version": 1, "fps": 24.0, "frames": names, "times": [i / 24 for i in range(frames)]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder: Path) -> dict:
    here = Path(__file__).resolve().parent  # bench/viewer.py would shadow the viewer package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    from lyra.scene import load
    from lyra.scene.lazy_frames import gaussians_nbytes
    from viewer.state import AppState

    base_rss = peak_rss_mb()
    start = time.perf_counter()
    seq = load(folder)
    open_s = time.perf_counter() - start
    frame_bytes = gaussians_nbytes(seq[0])
    seq.frames.budget_bytes = 2 * frame_bytes
    for i in range(len(seq)):
        seq[i]
    walk_rss = peak_rss_mb()

    state = AppState()
    name = state.add_scene(seq, "clip")
    state.playing = True
    switches, prepares = [], []
    for i in range(1, min(len(seq), 8)):
        state.set_frame(i - 1)
        start = time.perf_counter()
        for future in state.prefetch(ahead=1):  # what playback does while frame i - 1 shows
            future.result()
        prepares.append(time.perf_counter() - start)
        start = time.perf_counter()
        state.set_frame(i)
        buffer = state.send_buffer(name, i)
        switches.append(time.perf_counter() - start)
    sent_playing = len(buffer)
    state.playing = False
    state.set_splat_budget(paused=10**9, playing=10**9)
    full = []
    for i in range(8, min(len(seq), 12)):
        for future in seq.frames.prefetch([i]):
            future.result()
        start = time.perf_counter()
        state.set_frame(i)
        buffer = state.send_buffer(name, i)
        full.append(time.perf_counter() - start)
    return {
        "frames": len(seq), "splats_per_frame": seq.num_gaussians[0], "open_s": round(open_s, 4),
        "frame_mb": round(frame_bytes / 2**20, 1), "baseline_eager_mb": round(len(seq) * frame_bytes / 2**20, 1),
        "peak_rss_mb": round(walk_rss, 1), "rss_before_open_mb": round(base_rss, 1),
        "peak_rss_over_frame": round((walk_rss - base_rss) / (frame_bytes / 2**20), 2),
        "switch_at_budget_ms": round(1000 * statistics.median(switches), 1), "splats_sent_playing": sent_playing,
        "prepare_next_in_background_ms": round(1000 * statistics.median(prepares), 1),
        "full_detail_switch_ms": round(1000 * statistics.median(full), 1), "splats_sent_full": len(buffer),
        "frame_reads": seq.frames.reads, "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--splats", type=int, default=2_000_000)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory(prefix="lyra-bench-seq-") as tmp:
        folder = Path(tmp) / "clip"
        folder.mkdir()
        start = time.perf_counter()
        make_folder(folder, args.frames, args.splats)
        made_s = time.perf_counter() - start
        child = subprocess.run([sys.executable, __file__, "--measure", str(folder)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        if child.returncode != 0:
            sys.exit(f"measuring failed:\n{child.stderr[-3000:]}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    result["generate_s"] = round(made_s, 1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

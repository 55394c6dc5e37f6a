"""PLY load/save throughput on a 1M-splat SH-degree-3 scene (248 bytes/splat, 236 MiB).

Prints one JSON object. Baselines measured in the same run, on the same file:
- ``floor_fromfile_s``: one ``np.fromfile`` of the whole payload (no parsing, no
  activation, no layout change): the least any loader must do.
- ``plyfile_load_s``: common practice, ``plyfile.PlyData.read`` then building
  the activated arrays from the named columns.
- ``floor_tofile_s`` / ``floor_tofile_fsync_s``: writing a ready-made row array
  with ``ndarray.tofile`` (without / with fsync). Our save goes through
  ``atomic_write``, which fsyncs (a durable write needs it), so the fsync'd
  figure is the like-for-like floor; the ratio to the no-fsync figure is
  printed too, and is bounded below by the fsync alone.
- ``floor_write_writeback_fsync_s``: the same buffer written in 2 MiB pieces,
  each followed by the writeback hint our writer gives (``sync_file_range``),
  then fsync: the durable write with the disk working during the writes, so
  the floor our save is really up against (plain tofile + fsync waits for
  the whole disk write at the end, which our save does not).
- ``load_1thread_s`` / ``save_1thread_s``: our reader and writer limited to one
  thread, to show what the second thread buys (nothing when another process
  holds the other core: compare ``load_average_1min``).
- ``spz_load_s`` / ``sog_load_s``: our SPZ and SOG readers on the same scene
  (written by our writers), against our PLY load of it in the same run
  (``spz_vs_ply_load_*``, ``sog_vs_ply_load_*``). ``--no-compact`` skips them
  (writing the 1M-splat SOG takes a while: the SH palette's k-means).
Each figure is the best of ``--repeats`` runs (page cache warm: we measure the
code, not the disk). Usage: ``python bench/io.py [--splats 1000000] [--repeats 3] [--no-compact]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lyra.scene import Gaussians, load, save
from lyra.scene.formats import ply, ply_write


def best_of(repeats: int, fn) -> tuple[float, float]:
    """Best wall-clock and best CPU (user + system) seconds over ``repeats`` calls.

    CPU time is reported too because the CI machine is shared: other jobs
    stretch wall time, much less the CPU time our own process spends.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def plyfile_load(path: Path) -> dict:
    """How loaders commonly read a 3DGS PLY: plyfile, then stack named columns and activate."""
    import plyfile

    v = plyfile.PlyData.read(str(path))["vertex"]
    means = np.stack([v["x"], v["y"], v["z"]], axis=1)
    dc = np.stack([v[f"f_dc_{i}"] for i in range(3)], axis=1)
    rest_names = sorted((p.name for p in v.properties if p.name.startswith("f_rest_")), key=lambda s: int(s[7:]))
    rest = np.stack([v[name] for name in rest_names], axis=1).reshape(len(means), 3, -1).transpose(0, 2, 1)
    sh = np.concatenate([dc[:, None], rest], axis=1)
    opacities = 1 / (1 + np.exp(-v["opacity"]))
    scales = np.exp(np.stack([v[f"scale_{i}"] for i in range(3)], axis=1))
    quats = np.stack([v[f"rot_{i}"] for i in range(4)], axis=1)
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    return {"means": means, "sh": sh, "opacities": opacities, "scales": scales, "quats": quats}


def random_scene(n: int, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
        scales=torch.rand(n, 3, generator=gen) * 0.05 + 1e-3,
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        sh=torch.randn(n, 16, 3, generator=gen) * 0.3,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splats", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-compact", action="store_true", help="skip the SPZ and SOG loads")
    args = parser.parse_args()
    scene = random_scene(args.splats)
    with tempfile.TemporaryDirectory(prefix="lyra-bench-io-") as tmp:
        path = Path(tmp) / "scene.ply"
        save(scene, path)
        payload = path.stat().st_size
        rows = np.fromfile(path, dtype=np.uint8)  # same byte count as the file: the ready-made buffer to write

        def raw_tofile(fsync: bool) -> None:
            target = Path(tmp) / "raw.bin"
            target.unlink(missing_ok=True)  # a fresh file each time, like atomic_write's temp file
            with open(target, "wb") as handle:
                rows.tofile(handle)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())

        def single_threaded(fn):
            def run() -> None:
                saved = ply.READ_THREADS, ply_write.WRITE_THREADS
                ply.READ_THREADS = ply_write.WRITE_THREADS = 1
                try:
                    fn()
                finally:
                    ply.READ_THREADS, ply_write.WRITE_THREADS = saved
            return run

        load_average_start = os.getloadavg()[0]
        def raw_write_with_writeback() -> None:
            """The best durable write we know: 2 MiB writes, each followed by a writeback hint, then fsync."""
            target = Path(tmp) / "raw.bin"
            target.unlink(missing_ok=True)
            view = memoryview(rows)
            with open(target, "wb", buffering=0) as handle:
                for offset in range(0, len(view), 1 << 21):
                    handle.write(view[offset : offset + (1 << 21)])
                    ply_write._start_writeback(handle.fileno(), offset, len(view[offset : offset + (1 << 21)]))
                os.fsync(handle.fileno())

        compact = {} if args.no_compact else {"spz": Path(tmp) / "scene.spz", "sog": Path(tmp) / "scene.sog"}
        for compact_path in compact.values():
            save(scene, compact_path)
        timings = {
            "load": best_of(args.repeats, lambda: load(path)),
            **{f"{name}_load": best_of(args.repeats, lambda p=compact_path: load(p)) for name, compact_path in compact.items()},
            "load_1thread": best_of(args.repeats, single_threaded(lambda: load(path))),
            "floor_fromfile": best_of(args.repeats, lambda: np.fromfile(path, dtype=np.float32)),
            "plyfile_load": best_of(max(1, args.repeats - 1), lambda: plyfile_load(path)),
            "save": best_of(args.repeats, lambda: save(scene, Path(tmp) / "out.ply")),
            "save_1thread": best_of(args.repeats, single_threaded(lambda: save(scene, Path(tmp) / "out.ply"))),
            "floor_tofile": best_of(args.repeats, lambda: raw_tofile(False)),
            "floor_tofile_fsync": best_of(args.repeats, lambda: raw_tofile(True)),
            "floor_write_writeback_fsync": best_of(args.repeats, raw_write_with_writeback),
        }
    results = {"splats": args.splats, "sh_degree": 3, "file_mib": round(payload / 2**20, 1),
               "torch_threads": torch.get_num_threads(), "read_threads": ply.READ_THREADS,
               "write_threads": ply_write.WRITE_THREADS, "cpu_count": os.cpu_count(),
               "load_average_1min_start": load_average_start, "load_average_1min": os.getloadavg()[0]}
    for name, (wall, cpu) in timings.items():
        results[f"{name}_s"] = wall
        results[f"{name}_cpu_s"] = cpu
    for suffix in ("_s", "_cpu_s"):
        kind = "wall" if suffix == "_s" else "cpu"
        results[f"load_vs_floor_{kind}"] = results[f"load{suffix}"] / results[f"floor_fromfile{suffix}"]
        results[f"plyfile_vs_load_{kind}"] = results[f"plyfile_load{suffix}"] / results[f"load{suffix}"]
        results[f"save_vs_tofile_fsync_{kind}"] = results[f"save{suffix}"] / results[f"floor_tofile_fsync{suffix}"]
        results[f"save_vs_tofile_no_fsync_{kind}"] = results[f"save{suffix}"] / results[f"floor_tofile{suffix}"]
        results[f"save_vs_write_writeback_fsync_{kind}"] = (results[f"save{suffix}"]
                                                            / results[f"floor_write_writeback_fsync{suffix}"])
        for name in ("spz", "sog"):
            if f"{name}_load{suffix}" in results:
                results[f"{name}_vs_ply_load_{kind}"] = results[f"{name}_load{suffix}"] / results[f"load{suffix}"]
    results["targets"] = {"load_vs_floor": "<= 1.3", "plyfile_vs_load": ">= 5", "save_vs_tofile_fsync": "<= 1.5",
                          "spz_vs_ply_load": "<= 2", "sog_vs_ply_load": "<= 3"}
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()

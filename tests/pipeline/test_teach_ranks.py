"""Generation over ranks on CPU (gloo): two ranks write the same SDG folders, byte for byte, as one rank, and a
run whose rank was killed resumes where it stopped. Ranks are separate processes with torchrun's environment
(tests/pipeline/rank_worker.py), on 127.0.0.1 and a free port, each with a bounded wait."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from lyra.pipeline.request import GenerateRequest
from lyra.pipeline.teach import STAGE_FILE

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("rank_worker.py")
ROOT = Path(__file__).resolve().parents[2]
TRAJECTORIES = ["left", "right", "up", "zoom_out"]  # rank 0: left, up; rank 1: right, zoom_out
TIMEOUT_S = 600


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_ranks(spec: Path, world: int, port: int) -> list[subprocess.Popen]:
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo",
               "LYRA_RANK_TIMEOUT_S": "120", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, str(WORKER), str(spec)], env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    outcomes = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        outcomes.append((proc.returncode, out, err))
    return outcomes


def write_spec(tmp_path: Path, name: str, work: Path, vae_dir, checkpoint, **extra) -> Path:
    request = GenerateRequest(input=str(tmp_path / "photo.png"), depth=str(tmp_path / "depth.npy"), backend="lyra",
                              teacher="lift", trajectories=TRAJECTORIES, size=(48, 32), num_frames=9, prune_ratio=0.0,
                              device="cpu", work_dir=str(work), output=str(tmp_path / f"{name}.ply"))
    request.to_yaml(tmp_path / f"{name}.yaml")
    spec = tmp_path / f"{name}.json"
    spec.write_text(json.dumps({"request": str(tmp_path / f"{name}.yaml"), "vae": str(vae_dir),
                                "decoder": str(checkpoint), **extra}))
    return spec


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(4)
    iio.imwrite(tmp_path / "photo.png", rng.integers(0, 256, (40, 64, 3), dtype=np.uint8))
    np.save(tmp_path / "depth.npy", np.full((40, 64), 2.0, np.float32))
    return tmp_path


def test_two_gloo_ranks_write_what_one_rank_writes_and_resume_after_a_rank_is_killed(
    inputs, tmp_path, vae_dir, static_checkpoint_dir
):
    one = finish(start_ranks(write_spec(tmp_path, "one", tmp_path / "one", vae_dir, static_checkpoint_dir), 1,
                             free_port()))
    assert one[0][0] == 0, one[0][2][-3000:]

    # Two ranks; rank 1 dies (SIGKILL) when asked for its second trajectory, zoom_out (folder 3).
    spec = write_spec(tmp_path, "two", tmp_path / "two", vae_dir, static_checkpoint_dir, die_at="zoom_out")
    killed = finish(start_ranks(spec, 2, free_port()))
    assert killed[1][0] == -9, killed[1][2][-3000:]
    assert killed[0][0] != 0  # rank 0 does not decode half a scene: its barrier fails once rank 1 is gone
    sdg = tmp_path / "two" / "sdg"
    assert sorted(p.name for p in sdg.iterdir() if (p / STAGE_FILE).is_file()) == ["0", "1", "2"]
    assert not (sdg / "3").exists()  # nothing half-written
    assert not (tmp_path / "two.ply").exists()
    stamps = {name: (sdg / name / STAGE_FILE).stat().st_mtime_ns for name in ("0", "1", "2")}

    # The same two ranks again, nobody dies: only zoom_out is made, rank 0 decodes.
    spec = write_spec(tmp_path, "two", tmp_path / "two", vae_dir, static_checkpoint_dir)
    resumed = finish(start_ranks(spec, 2, free_port()))
    assert [code for code, _, _ in resumed] == [0, 0], [err[-3000:] for _, _, err in resumed]
    assert [json.loads(out.strip().splitlines()[-1])["result"] for _, out, _ in resumed][1] is None
    assert {name: (sdg / name / STAGE_FILE).stat().st_mtime_ns for name in stamps} == stamps  # reused, not remade
    for name in ("0", "1", "2", "3"):
        assert folder_bytes(sdg / name) == folder_bytes(tmp_path / "one" / "sdg" / name), name
    assert (tmp_path / "two.ply").read_bytes() == (tmp_path / "one.ply").read_bytes()


def test_torchrun_lyra_generate_shares_the_trajectories_and_rank_0_writes_the_scene(
    inputs, tmp_path, vae_dir, static_checkpoint_dir
):
    registry = tmp_path / "models.yaml"
    registry.write_text(f"tokenizer:\n  path: {vae_dir}\n  subfolder: null\n"
                        f"decoder_static:\n  path: {static_checkpoint_dir}\n  file: config.yaml\n")
    env = {**os.environ, "LYRA_MODELS": str(registry), "PYTHONPATH": str(ROOT), "GLOO_SOCKET_IFNAME": "lo",
           "OMP_NUM_THREADS": "1", "LYRA_RANK_TIMEOUT_S": "300"}
    flags = ["generate", str(tmp_path / "photo.png"), "--depth", str(tmp_path / "depth.npy"), "--backend", "lyra",
             "--teacher", "lift", "--trajectories", "left,right", "--size", "48x32", "--frames", "9", "--device", "cpu",
             "--quiet"]
    single = subprocess.run([sys.executable, "-m", "lyra", *flags, "--out", str(tmp_path / "single.ply")], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert single.returncode == 0, single.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "lyra"]
    ranks = subprocess.run([*torchrun, *flags, "--out", str(tmp_path / "ranks.ply")], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    assert "rank 1: trajectories written" in ranks.stdout and f"wrote {tmp_path / 'ranks.ply'}" in ranks.stdout
    made_by = {json.loads((tmp_path / "ranks.ply.work" / "sdg" / f / STAGE_FILE).read_text())["trajectory"]
               for f in ("0", "1")}
    assert made_by == {"left", "right"}
    assert (tmp_path / "ranks.ply").read_bytes() == (tmp_path / "single.ply").read_bytes()

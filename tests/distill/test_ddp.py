"""DDP over gloo: 2 CPU processes with half the global batch each follow the 1-process loss trajectory."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lyra.distill.train import train

RUNNER = """
import sys
from lyra.distill.config import load_config
from lyra.distill.train import train
train(load_config(sys.argv[1]), sys.argv[2], max_steps=int(sys.argv[3]))
"""


def _train_losses(out):
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in lines if r["split"] == "train"]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(synthetic_root, make_config, tmp_path):
    config = make_config(synthetic_root, batch_size=2)
    single = tmp_path / "single"
    train(config, single, max_steps=3)

    config_file = tmp_path / "config.yaml"
    config.to_yaml(config_file)
    (tmp_path / "runner.py").write_text(RUNNER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    with socket.socket() as probe:  # a free port: other test runs may share this machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
         str(tmp_path / "runner.py"), str(config_file), str(tmp_path / "ddp"), "3"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _train_losses(single), _train_losses(tmp_path / "ddp")
    assert len(one) == len(two) == 3
    for a, b in zip(one, two, strict=True):
        assert b == pytest.approx(a, rel=1e-4, abs=1e-6)
    assert one[0] != one[1]  # the trajectory moves (it is not trivially equal)

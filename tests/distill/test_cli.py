"""`lyra train tiny-cpu-ci` (the CI cut of tiny-cpu) learns; `lyra eval` reads its checkpoint; make-data writes data."""

import json
import os
import subprocess
import sys

import pytest

from lyra.model import load_decoder


def _lyra(*args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "lyra", *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env.update(LYRA_STUDIO_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    return env


@pytest.mark.slow
def test_tiny_cpu_ci_learns_and_lyra_eval_reads_the_checkpoint(tmp_path, env):
    out = tmp_path / "run"
    result = _lyra("train", "tiny-cpu-ci", "--out", str(out), "--seed", "5", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in lines if r["split"] == "train"]
    evals = [r for r in lines if r["split"] == "eval"]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 80
    assert sum(losses[-20:]) / 20 < 0.7 * sum(losses[:20]) / 20
    assert summary["psnr_gain_db"] == pytest.approx(evals[-1]["psnr"] - evals[0]["psnr"])
    assert summary["psnr_gain_db"] > 1.5
    assert load_decoder(out / "checkpoint").config.enc_embed_dim == 64

    data = next((tmp_path / "cache" / "distill").iterdir())
    result = _lyra("eval", str(out / "checkpoint"), str(data), "--size", "32x48", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(result.stdout)
    assert metrics["scenes"] == 1
    assert metrics["psnr"] == pytest.approx(evals[-1]["psnr"], abs=1e-3)  # same held-out sample, same numbers
    assert {"ssim", "depth_abs_rel", "chamfer"} <= set(metrics)


def test_make_data_gen3c_without_weights_is_a_clear_error(tmp_path, env):
    result = _lyra("distill", "make-data", "--teacher", "gen3c", "--images", str(tmp_path), "--out", str(tmp_path / "o"), env=env)
    assert result.returncode == 1
    assert "lyra distill: error:" in result.stderr and "Traceback" not in result.stderr


def test_train_unknown_preset_is_a_clear_error(tmp_path, env):
    result = _lyra("train", "nope", "--out", str(tmp_path / "x"), env=env)
    assert result.returncode == 1 and "unknown preset 'nope'" in result.stderr

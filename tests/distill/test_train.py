"""The training loop: it learns, it resumes exactly, its checkpoints load, metrics follow the contract."""

import json

import pytest

from lyra.distill.train import train
from lyra.model import load_decoder


def _lines(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_short_run_lowers_the_loss_and_writes_the_contract(synthetic_root, make_config, tmp_path):
    config = make_config(synthetic_root, eval={"every": 20, "scenes": 1, "targets": 2})
    out = tmp_path / "run"
    train(config, out, max_steps=40)
    lines = _lines(out)
    evals = [r for r in lines if r["split"] == "eval"]
    losses = [r["loss"] for r in lines if r["split"] == "train"]
    assert lines[0]["split"] == "eval" and lines[0]["step"] == 0  # before any update
    assert [e["step"] for e in evals] == [0, 20, 40] and all("psnr" in e for e in evals)
    assert len(losses) == 40
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10
    assert evals[-1]["psnr"] > evals[0]["psnr"]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    model = load_decoder(out / "checkpoint")
    assert model.config == config.model


@pytest.mark.slow
def test_resume_continues_exactly(synthetic_root, make_config, tmp_path):
    config = make_config(synthetic_root, checkpoint_every=2)
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(config, straight, max_steps=4)
    train(config, split, max_steps=2)
    train(config, split, max_steps=4, resume=True)
    a = [r["loss"] for r in _lines(straight) if r["split"] == "train"]
    b = [r["loss"] for r in _lines(split) if r["split"] == "train"]
    assert len(a) == len(b) == 4
    assert b[2:] == a[2:]  # bit-identical next-step losses after the resume

"""``lyra train --resume`` with a damaged ``train_state.pt``: a CheckpointError that says to start over, no traceback."""

from __future__ import annotations

import pytest
import torch

from lyra.distill.train import STATE_FILE, build_model, load_checkpoint, lr_factor, save_checkpoint
from lyra.errors import CheckpointError


@pytest.fixture
def checkpoint(tmp_path, make_config):
    config = make_config(tmp_path / "no-data")
    model = build_model(config, torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, 2))
    save_checkpoint(tmp_path, model, optimizer, scheduler, step=5)
    return tmp_path, model, optimizer, scheduler


def test_an_intact_checkpoint_resumes_at_its_step(checkpoint):
    out, model, optimizer, scheduler = checkpoint
    assert load_checkpoint(out, model, optimizer, scheduler) == 5


def _truncated(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _garbage(path):
    path.write_bytes(b"\x80\x04this is not a torch file" * 100)


def _keyless(path):
    torch.save({"step": 3}, path)


def _wrong_types(path):
    torch.save({"step": "x", "optimizer": {}, "scheduler": 1, "torch_rng": torch.zeros(3)}, path)


@pytest.mark.parametrize("damage", [_truncated, _garbage, _keyless, _wrong_types])
def test_a_damaged_training_state_raises_a_checkpoint_error(checkpoint, damage):
    out, model, optimizer, scheduler = checkpoint
    damage(out / "checkpoint" / STATE_FILE)
    with pytest.raises(CheckpointError, match="without --resume"):
        load_checkpoint(out, model, optimizer, scheduler)

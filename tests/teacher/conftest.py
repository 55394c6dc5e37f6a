"""Fixtures of the teacher tests; the helpers live in teacher_tiny.py (importable from the tests)."""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

from teacher_tiny import random_transformer  # noqa: E402


@pytest.fixture(autouse=True)
def _offline_single_thread(monkeypatch):
    """No network; one intra-op thread (tiny matmuls are ~100x slower with 2 threads on a busy shared machine)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_transformer():
    return random_transformer()


@pytest.fixture
def tiny_vae(vae_dir):
    """The tiny random Cosmos tokenizer of tests/conftest.py (saved once per session), loaded fresh."""
    from diffusers import AutoencoderKLCosmos

    return AutoencoderKLCosmos.from_pretrained(vae_dir, low_cpu_mem_usage=False).eval()

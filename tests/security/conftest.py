"""Helpers for the hostile-input suite: tiny scenes and a deadline for calls that used to hang."""

from __future__ import annotations

import threading

import pytest
import torch

from lyra.scene import Gaussians
from lyra.scene.sh import num_sh_coeffs


def tiny_gaussians(n: int = 16, sh_degree: int = 0, seed: int = 0) -> Gaussians:
    gen = torch.Generator().manual_seed(seed)
    return Gaussians(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
        scales=torch.rand(n, 3, generator=gen) * 0.1 + 0.01,
        opacities=torch.rand(n, generator=gen) * 0.9 + 0.05,
        sh=(torch.rand(n, num_sh_coeffs(sh_degree), 3, generator=gen) - 0.5),
    )


@pytest.fixture
def gaussians():
    return tiny_gaussians


def call_with_deadline(fn, seconds: float = 5.0, on_timeout=None):
    """Run ``fn()`` in a thread; return ``("ok", value)`` or ``("raised", exc)``; fail the test if it hangs.

    ``on_timeout`` releases a stuck thread (e.g. opens a FIFO's other end) so pytest can exit.
    """
    result: dict = {}

    def target():
        try:
            result["ok"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            result["raised"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if on_timeout is not None:
            on_timeout()
        thread.join(5)
        pytest.fail(f"call did not return within {seconds} s")
    return ("ok", result["ok"]) if "ok" in result else ("raised", result["raised"])

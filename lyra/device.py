"""The one device rule of the project: ``auto`` is CUDA when present, else the CPU.

``resolve_device("auto")`` gives ``cuda`` (the rank's GPU, ``LOCAL_RANK``, under torchrun) when CUDA is
available, else ``cpu``; ``"cuda"`` without CUDA is an error naming the field, never a silent CPU run;
``"cpu"`` and ``"cuda:N"`` are taken as given. Every door (``lyra generate``, ``lyra decode``, the
viewer's panels, the request's ``run``) and every model loader goes through it.
"""

from __future__ import annotations

import os

import torch

from lyra.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str | torch.device = "auto", *, field: str = "device") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` -> a :class:`torch.device` (see the module docstring)."""
    text = str(choice).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(f"{field}: expected a CUDA GPU for {choice!r}, found none (use 'auto' or 'cpu')")
        if text == "cuda":
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
        try:
            device = torch.device(text)
        except RuntimeError:
            device = None
        if device is None or device.index is None or device.index >= torch.cuda.device_count():
            raise ConfigError(f"{field}: expected cuda:0..cuda:{torch.cuda.device_count() - 1}, found {choice!r}")
        return device
    raise ConfigError(f"{field}: expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), found {choice!r}")

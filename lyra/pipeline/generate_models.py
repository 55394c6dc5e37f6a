"""The models the Lyra pipeline loads when the caller gives none: the model registry, checked up front.

* :func:`require_models` - fail before any work when a model a run will load is missing;
* :func:`missing_models` - the registry rows a backend needs that this machine lacks (the Generate panel);
* :func:`default_teacher`, :func:`default_decoder` - GEN3C, the decoder and the tokenizer from the registry;
* :func:`memory_mode` - the teacher's memory mode from the ``none | model | group [+fp8]`` option.
"""

from __future__ import annotations

import torch

from lyra.errors import InputDataError


def memory_mode(settings):
    """The teacher's memory mode from ``settings.offload``: ``none | model | group``, optionally ``+fp8``."""
    from lyra.teacher.memory import OFFLOAD_MODES, MemoryMode

    parts = [p.strip() for p in settings.offload.split("+") if p.strip()] or ["none"]
    fp8 = "fp8" in parts
    offload = [p for p in parts if p != "fp8"] or ["none"]
    if len(offload) != 1 or offload[0] not in OFFLOAD_MODES:
        raise InputDataError(f"memory mode must be one of {OFFLOAD_MODES}, optionally '+fp8', found {settings.offload!r}")
    device = "cuda" if settings.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    return MemoryMode(device=device, dtype=dtype, offload=offload[0], fp8_storage=fp8)


def default_teacher(settings):
    """GEN3C from the model registry (T5 when it is there, else the official zero-embedding mode)."""
    from lyra.model.registry import find_model
    from lyra.teacher.teacher import Gen3CSettings, load_gen3c_teacher

    teacher_settings = Gen3CSettings(height=settings.height, width=settings.width, num_steps=settings.steps,
                                     guidance=settings.guidance, seed=settings.seed)
    return load_gen3c_teacher(settings=teacher_settings, memory=memory_mode(settings),
                              text_encoder=find_model("t5") is not None)


def default_decoder(settings, dynamic: bool, decoder, tokenizer, tokenizer_folder):
    """The static or dynamic Lyra decoder and the Cosmos tokenizer from the model registry."""
    from lyra.model.checkpoint import load_decoder
    from lyra.model.registry import resolve_model
    from lyra.model.tokenizer import load_cosmos_tokenizer

    device = torch.device("cuda" if settings.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    if decoder is None:
        kind = "dynamic" if dynamic else "static"
        decoder = load_decoder(resolve_model(f"decoder_{kind}"), kind=kind, device=device)
    if tokenizer is None:
        tokenizer_folder = resolve_model("tokenizer")
        tokenizer = load_cosmos_tokenizer(tokenizer_folder, device=device)
    return decoder, tokenizer, tokenizer_folder


def require_models(teacher: bool, decoder: bool, dynamic: bool) -> None:
    """Fail before any work when a model the run will load is missing (one message naming all of them)."""
    from lyra.model.registry import ModelNotFoundError, check_models

    needed = ({"gen3c"} if teacher else set()) | ({"tokenizer", f"decoder_{'dynamic' if dynamic else 'static'}"} if decoder else set())
    missing = [row for row in check_models() if row["name"] in needed and not row["found"]]
    if missing:
        listed = "; ".join(f"{row['name']} ({row['hint']})" for row in missing)
        raise ModelNotFoundError(f"the lyra backend needs models that are missing: {listed}. See `lyra models check`")


def missing_models(backend: str, dynamic: bool = False) -> list[dict]:
    """Registry rows a backend needs that are not on this machine (``lyra models check``'s rows)."""
    if backend == "lift":
        return []
    from lyra.model.registry import check_models

    needed = {"gen3c", "tokenizer", "decoder_dynamic" if dynamic else "decoder_static"}
    return [row for row in check_models() if row["name"] in needed and not row["found"]]



"""The models the lyra backend loads when the caller gives none: the model registry, checked up front.

* :func:`require_models` - fail before any work when a model a run will load is missing;
* :func:`missing_models` - the registry rows a backend needs that this machine lacks (the Generate panel);
* :func:`default_teacher`, :func:`default_decoder` - the request's teacher (GEN3C or the lift teacher),
  the decoder and the tokenizer from the registry;
* :func:`teacher_identity`, :func:`decoder_identity` - what resume keys hold of those models: the class
  and the weights' files (path, size, mtime) for registry models, a digest of the weights for models
  handed over as objects, so another decoder or teacher is never "reused";
* :func:`memory_mode` - the GEN3C teacher's memory mode from the request's ``none | model | group [+fp8]``.
"""

from __future__ import annotations

import torch

from lyra.device import resolve_device
from lyra.errors import InputDataError

# What each memory mode needs: the README's table, shown by the Generate panel when the backend is blocked.
MEMORY_MODE_HELP = ("none: all on one GPU (80 GB class); model / group: CPU offload of whole models / block "
                    "groups (about 24 / 16 GB of GPU memory); +fp8: fp8 weight storage (less again)")


def memory_mode(request):
    """The teacher's memory mode from ``request.memory``: ``none | model | group``, optionally ``+fp8``."""
    from lyra.teacher.memory import OFFLOAD_MODES, MemoryMode

    parts = [p.strip() for p in request.memory.split("+") if p.strip()] or ["none"]
    fp8 = "fp8" in parts
    offload = [p for p in parts if p != "fp8"] or ["none"]
    if len(offload) != 1 or offload[0] not in OFFLOAD_MODES:
        raise InputDataError(f"memory: expected one of {OFFLOAD_MODES}, optionally '+fp8', found {request.memory!r}")
    device = resolve_device(request.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    return MemoryMode(device=device.type, dtype=dtype, offload=offload[0], fp8_storage=fp8)


def default_teacher(request):
    """The request's teacher from the registry: GEN3C (T5 when present, else zero text embeddings) or the lift teacher."""
    from lyra.model.registry import find_model, resolve_model

    if request.teacher == "lift":
        from lyra.model.tokenizer import load_cosmos_tokenizer
        from lyra.pipeline.lift import lift_image
        from lyra.teacher.lift import LiftTeacher

        folder = resolve_model("tokenizer")
        return LiftTeacher(load_cosmos_tokenizer(folder), lift_image, folder)
    from lyra.teacher.teacher import Gen3CSettings, load_gen3c_teacher

    teacher_settings = Gen3CSettings(height=request.height, width=request.width, num_steps=request.steps,
                                     guidance=request.guidance, seed=request.seed)
    return load_gen3c_teacher(settings=teacher_settings, memory=memory_mode(request),
                              text_encoder=find_model("t5") is not None)


def teacher_identity(request, teacher=None) -> dict:
    """The teacher part of a trajectory's resume key (computed without loading a registry teacher)."""
    from lyra.fileio import file_identity
    from lyra.model.registry import find_model

    if teacher is not None:
        identity = getattr(teacher, "identity", None)
        if identity is None:
            from lyra.model.checkpoint import module_fingerprint

            modules = {name: module_fingerprint(value) for name, value in sorted(vars(teacher).items())
                       if isinstance(value, torch.nn.Module)}
            identity = {"class": type(teacher).__qualname__, "weights": modules}
        return identity
    if request.teacher == "lift":
        return {"class": "LiftTeacher", "tokenizer": file_identity(find_model("tokenizer"))}
    return {"class": "Gen3CTeacher", "weights": file_identity(find_model("gen3c")),
            "tokenizer": file_identity(find_model("tokenizer")), "t5": file_identity(find_model("t5")),
            "fp8": "fp8" in request.memory}


def decoder_identity(request, dynamic: bool, decoder=None, tokenizer=None) -> dict:
    """The decoder part of the decode stage's resume key: checkpoint and tokenizer (files, or weights given)."""
    from lyra.fileio import file_identity
    from lyra.model.checkpoint import module_fingerprint
    from lyra.model.registry import find_model

    kind = "dynamic" if dynamic else "static"
    return {
        "decoder": module_fingerprint(decoder) if decoder is not None else file_identity(find_model(f"decoder_{kind}")),
        "tokenizer": module_fingerprint(tokenizer) if tokenizer is not None else file_identity(find_model("tokenizer")),
    }


def default_decoder(request, dynamic: bool, decoder, tokenizer, tokenizer_folder):
    """The static or dynamic Lyra decoder and the Cosmos tokenizer from the model registry."""
    from lyra.model.checkpoint import load_decoder
    from lyra.model.registry import resolve_model
    from lyra.model.tokenizer import load_cosmos_tokenizer

    device = resolve_device(request.device)
    if decoder is None:
        kind = "dynamic" if dynamic else "static"
        decoder = load_decoder(resolve_model(f"decoder_{kind}"), kind=kind, device=device)
    if tokenizer is None:
        tokenizer_folder = resolve_model("tokenizer")
        tokenizer = load_cosmos_tokenizer(tokenizer_folder, device=device)
    return decoder, tokenizer, tokenizer_folder


def require_models(teacher: bool, decoder: bool, dynamic: bool) -> None:
    """Fail before any work when a model the run will load is missing (one message naming all of them).

    ``teacher``: GEN3C is loaded from the registry; ``decoder``: the decoder and tokenizer are.
    """
    from lyra.model.registry import ModelNotFoundError, check_models

    needed = ({"gen3c"} if teacher else set()) | ({"tokenizer", f"decoder_{'dynamic' if dynamic else 'static'}"} if decoder else set())
    missing = [row for row in check_models() if row["name"] in needed and not row["found"]]
    if missing:
        listed = "; ".join(f"{row['name']} ({row['hint']})" for row in missing)
        raise ModelNotFoundError(f"the lyra backend needs models that are missing: {listed}. See `lyra models check`")


def missing_models(backend: str, dynamic: bool = False, teacher: str = "gen3c") -> list[dict]:
    """Registry rows a backend (and teacher) needs that are not on this machine (``lyra models check``'s rows)."""
    if backend == "lift":
        return []
    from lyra.model.registry import check_models

    needed = {"tokenizer", "decoder_dynamic" if dynamic else "decoder_static"} | ({"gen3c"} if teacher == "gen3c" else set())
    return [row for row in check_models() if row["name"] in needed and not row["found"]]

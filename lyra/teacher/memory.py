"""Memory modes of the GEN3C teacher: where each model lives and in which precision.

Flags (combine freely; see README "GEN3C memory modes" for the peak-memory table):

* ``dtype`` - ``bfloat16`` halves weights and activations (the official precision);
* ``offload="model"`` - every model stays on the CPU and is moved to the GPU only
  while it runs (text encoder, then tokenizer, then transformer, then tokenizer);
* ``offload="group"`` - diffusers group offloading of the transformer: blocks are
  streamed to the GPU one group at a time (``enable_group_offload``,
  ``block_level``, 1 block per group, CUDA stream prefetch);
* ``fp8_storage`` - diffusers layerwise casting: transformer weights stored in
  ``float8_e4m3fn`` and up-cast per layer to the compute dtype
  (``enable_layerwise_casting``; norms, patch embed and output layers stay as they are);
* ``free_text_encoder`` - the prompt is encoded once, then the T5 encoder is deleted;
* tokenizer encodes / decodes always run one clip at a time (the four warp videos
  of a chunk are never batched), so only one 121-frame clip's activations are live
  (~4 GB in bf16, below the transformer's peak). Spatial tiling is not offered:
  ``AutoencoderKLCosmos.enable_tiling`` is accepted but unused by diffusers 0.42.1's
  encode/decode, and tiles would change the official numbers at their seams.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch

from lyra.errors import InputDataError

OFFLOAD_MODES = ("none", "model", "group")
# Named combinations for command lines and settings files; the GPU budget is the README's estimate.
MEMORY_PRESETS: dict[str, dict] = {
    "cpu": dict(device="cpu", dtype=torch.float32, offload="none"),
    "full": dict(device="cuda", dtype=torch.bfloat16, offload="none"),  # ~30 GB
    "24gb": dict(device="cuda", dtype=torch.bfloat16, offload="model"),  # ~20 GB
    "16gb": dict(device="cuda", dtype=torch.bfloat16, offload="model", fp8_storage=True),  # ~13 GB
    "12gb": dict(device="cuda", dtype=torch.bfloat16, offload="group"),  # ~10 GB (T5 moved whole)
}


@dataclasses.dataclass
class MemoryMode:
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    offload: str = "none"
    fp8_storage: bool = False
    free_text_encoder: bool = True

    def __post_init__(self) -> None:
        if self.offload not in OFFLOAD_MODES:
            raise InputDataError(f"offload must be one of {OFFLOAD_MODES}, found {self.offload!r}")
        if self.offload == "group" and not str(self.device).startswith("cuda"):
            raise InputDataError("group offloading streams blocks to a CUDA device; use offload='model' or 'none' on CPU")

    @classmethod
    def preset(cls, name: str, **overrides) -> MemoryMode:
        """One of :data:`MEMORY_PRESETS` (``cpu``, ``full``, ``24gb``, ``16gb``, ``12gb``), fields overridable."""
        if name not in MEMORY_PRESETS:
            raise InputDataError(f"unknown memory preset {name!r}; choose one of {sorted(MEMORY_PRESETS)}")
        return cls(**{**MEMORY_PRESETS[name], **overrides})

    @property
    def storage_device(self) -> str:
        """Where models wait while they are not running."""
        return "cpu" if self.offload in ("model", "group") else str(self.device)

    def prepare_transformer(self, transformer: torch.nn.Module) -> torch.nn.Module:
        """Apply fp8 storage and group offloading (diffusers hooks) to the loaded transformer.

        Both hooks make the parameters lie about where and in which precision the network computes, so the
        compute device and dtype are recorded on the module (``lyra_compute_device`` / ``lyra_compute_dtype``)
        for :func:`lyra.teacher.gen3c.sample`.
        """
        torch.nn.Module.to(transformer, dtype=self.dtype)
        transformer.lyra_compute_device = torch.device(self.device)
        transformer.lyra_compute_dtype = self.dtype
        if self.fp8_storage:
            transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=self.dtype)
        if self.offload == "group":
            transformer.enable_group_offload(
                onload_device=torch.device(self.device),
                offload_device=torch.device("cpu"),
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=True,
            )
        else:
            torch.nn.Module.to(transformer, self.storage_device)
        return transformer

    @contextlib.contextmanager
    def on_device(self, module: torch.nn.Module | None) -> Iterator[None]:
        """Move ``module`` to the compute device for the block, then back to the CPU (model or group offload).

        In group mode only the transformer is streamed by diffusers' hooks; the other models move whole.
        """
        if module is None or self.offload == "none":
            yield
            return
        torch.nn.Module.to(module, self.device)
        try:
            yield
        finally:
            torch.nn.Module.to(module, "cpu")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

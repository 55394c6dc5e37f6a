"""GPU acceptance run: every CUDA path of the project, measured once, one JSON object on stdout.

Sections (each one try/except'd: a failure is recorded as ``{"ok": false, "error": ...}`` beside
whatever it had measured, the other sections still run, and the exit status is 1):

* ``render``: the torch rasterizer against gsplat (EWA and 3DGUT) on the same random scene
  (1M splats, SH degree 3) and the same 3 orbit cameras at 704x1280: PSNR of gsplat's image
  against ours, and milliseconds per frame of each (CUDA synchronised, best of 3 after a warm-up).
  Where gsplat is not usable the torch renderer is compared with itself and the JSON says so
  (``reference_backend: "torch"``, ``gsplat_unavailable``); a full (non-smoke) run then fails the section.
* ``gen3c``: the GEN3C transformer at full 7B size (``GEN3C_7B_CONFIG``) with random weights, built
  directly in bf16 on the GPU (no fp32 copy, no CPU initialisation); one sampling step (both
  guidance branches) of :func:`lyra.teacher.gen3c.sample` at 704x1280x121 (latents
  [1, 16, 16, 88, 160]) under the memory presets ``full``, ``24gb`` and ``16gb``
  (:class:`lyra.teacher.memory.MemoryMode`, as :class:`lyra.teacher.teacher.Gen3CTeacher` applies
  them): seconds per step, the time to move the transformer on and off the GPU (model offload),
  and the peak GPU memory (``torch.cuda.max_memory_allocated``) of the step. Only the transformer
  is resident: the T5 encoder and the tokenizer run before and after sampling, never beside it.
* ``decoder``: the Lyra decoder at the released size (``LyraDecoderConfig.official``) on one
  704x1280 view of 16 latent frames: bf16 against fp32 (same weights, same inputs), relative L2
  error and cosine of the raw outputs, and seconds per forward of each.
* ``trainer``: 20 steps of :func:`lyra.distill.train.train` (bf16 autocast on CUDA) with the
  released-size decoder on the ``tiny-cpu`` preset's synthetic data: seconds per step, first and
  last loss.
* ``ddp``: one DistributedDataParallel step in a 1-process NCCL group: the gradients must equal
  those of the same step without DDP.

``--smoke`` runs the same code on the CPU with tiny sizes (a 2-layer transformer, a 2-block
decoder, 2k splats at 64x96, 3 trainer steps, gloo instead of NCCL); the presets keep their
dtype, offload and fp8 storage but compute on the CPU. CI runs it (tests/test_bench_gpu.py).

Run: ``python bench/gpu.py`` (one 80 GB GPU, under 8 minutes) or ``python bench/gpu.py --smoke``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import math
import os
import platform
import resource
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

PRESETS = ("full", "24gb", "16gb")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """What one run measures; ``full`` is the acceptance run, ``smoke`` the CPU one CI runs."""

    device: str
    splats: int
    render_hw: tuple[int, int]
    render_repeats: int
    gen3c_config: dict
    latent_shape: tuple[int, int, int, int, int]  # [B, 16, T, h, w]
    text_tokens: int
    decoder_overrides: dict
    decoder_latent: tuple[int, int, int]  # (T, h, w) of one view
    trainer_steps: int
    ddp_backend: str


def full_sizes() -> Sizes:
    from lyra.teacher.checkpoint import GEN3C_7B_CONFIG

    return Sizes(
        device="cuda", splats=1_000_000, render_hw=(704, 1280), render_repeats=1,
        gen3c_config=dict(GEN3C_7B_CONFIG), latent_shape=(1, 16, 16, 88, 160), text_tokens=512,
        decoder_overrides={}, decoder_latent=(16, 88, 160), trainer_steps=20, ddp_backend="nccl",
    )


def smoke_sizes() -> Sizes:
    from lyra.teacher.checkpoint import GEN3C_7B_CONFIG

    tiny_gen3c = {
        **GEN3C_7B_CONFIG, "num_attention_heads": 2, "attention_head_dim": 32, "num_layers": 2, "mlp_ratio": 2.0,
        "text_embed_dim": 32, "adaln_lora_dim": 16, "max_size": (16, 32, 32),
    }
    tiny_decoder = dict(enc_depth=2, llrm_7m1t_index=2, enc_embed_dim=64, enc_num_heads=2, mamba_d_state=16,
                        mamba_headdim=32, mamba_chunk_size=64)
    return Sizes(
        device="cpu", splats=2_000, render_hw=(64, 96), render_repeats=1,
        gen3c_config=tiny_gen3c, latent_shape=(1, 16, 2, 8, 12), text_tokens=8,
        decoder_overrides=tiny_decoder, decoder_latent=(2, 8, 12), trainer_steps=3, ddp_backend="gloo",
    )


# ------------------------------------------------------------------------------------------- measuring
def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float | None:
    """Peak GPU memory allocated since :func:`reset_peak`, in GB (None on the CPU)."""
    if not device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated() / 1e9, 3)


def best_seconds(fn: Callable[[], object], device: str, repeats: int, warm_up: bool = True) -> float:
    """Best wall time of ``repeats`` calls (after one warm-up call unless the caller made one), the device
    synchronised around each."""
    if warm_up:
        fn()
    best = math.inf
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def psnr(image: torch.Tensor, reference: torch.Tensor) -> float:  # images in [0, 1]
    mse = float(((image.float() - reference.float()) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def finite_number(value: float) -> float | str:
    """JSON has no inf/nan: say them as strings."""
    return value if math.isfinite(value) else str(value)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------------------------- render
def section_render(sizes: Sizes, out: dict) -> None:
    from lyra.render.render import gsplat_available, render
    from lyra.render.trajectories import orbit
    from lyra.scene.synthetic import random_gaussians

    device = sizes.device
    height, width = sizes.render_hw
    gaussians = random_gaussians(sizes.splats, seed=0, sh_degree=3, spread=1.0, max_scale=0.02).to(device)
    cameras = orbit([0.0, 0.0, 0.0], 4.0, 3, width=width, height=height).to(device)
    reference = "gsplat" if gsplat_available() else "torch"
    out.update(splats=sizes.splats, size=[height, width], cameras=len(cameras.c2w), reference_backend=reference)
    if reference == "torch":
        out["gsplat_unavailable"] = (
            "gsplat's CUDA kernels are not usable here (no CUDA or not built): the torch renderer is compared "
            "with itself, so PSNR is inf by construction and says nothing about gsplat"
        )
    per_frame = 1000.0 / len(cameras.c2w)
    for mode, flags in (("ewa", {}), ("3dgut", {"with_ut": True, "with_eval3d": True})):

        def draw(backend: str, flags: dict = flags) -> torch.Tensor:
            return render(gaussians, cameras, backend=backend, **flags).rgb

        with torch.no_grad():
            ours, theirs = (lambda: draw("torch")), (lambda: draw(reference))
            image_ours, image_ref = ours(), theirs()  # also the warm-up of each
            out[mode] = {
                "psnr_reference_vs_torch_db": finite_number(round(psnr(image_ref.clamp(0, 1), image_ours.clamp(0, 1)), 2)),
                "torch_ms_per_frame": round(per_frame * best_seconds(ours, device, sizes.render_repeats, False), 2),
                f"{reference}_ms_per_frame": round(
                    per_frame * best_seconds(theirs, device, sizes.render_repeats, False), 2
                ),
            }
            del image_ours, image_ref
    if reference == "torch" and device.startswith("cuda"):
        raise RuntimeError(out["gsplat_unavailable"])


# ---------------------------------------------------------------------------------------------- GEN3C
def random_transformer(config: dict, device: str, dtype: torch.dtype):
    """A GEN3C transformer with random weights, initialised directly in ``dtype`` on ``device``."""
    from diffusers import CosmosTransformer3DModel

    from lyra.teacher.checkpoint import set_official_qk_norm_eps

    torch.manual_seed(0)
    with torch.device(device), default_dtype(dtype):
        model = CosmosTransformer3DModel(**config)
    set_official_qk_norm_eps(model)
    return model.eval().requires_grad_(False)


def gen3c_inputs(shape: tuple[int, ...], text_tokens: int, text_width: int) -> dict:
    """Random inputs of :func:`lyra.teacher.gen3c.sample` for latents ``shape`` [B, 16, T, h, w]."""
    from lyra.teacher.gen3c import BUFFER_MAX, POSE_CHANNELS_PER_BUFFER

    g = torch.Generator().manual_seed(0)
    return dict(
        condition_latent=torch.randn(shape, generator=g),
        condition_pose=torch.randn(shape[0], POSE_CHANNELS_PER_BUFFER * BUFFER_MAX, *shape[2:], generator=g),
        text_embeds=torch.randn(1, text_tokens, text_width, generator=g),
        negative_text_embeds=torch.randn(1, text_tokens, text_width, generator=g),
        noise=torch.randn(shape, generator=g),
    )


def section_gen3c(sizes: Sizes, out: dict) -> None:
    from lyra.teacher.gen3c import sample
    from lyra.teacher.memory import MemoryMode

    device = sizes.device
    shape = sizes.latent_shape
    text_width = sizes.gen3c_config["text_embed_dim"]
    inputs = gen3c_inputs(shape, sizes.text_tokens, text_width)
    frames = 8 * (shape[2] - 1) + 1
    out.update(latent_shape=list(shape), video=[frames, 8 * shape[3], 8 * shape[4]], steps_per_preset=1,
               guidance_branches=2)
    # One model for all presets, in the order that only ever moves it further from the GPU:
    # resident (full) -> CPU + model offload (24gb) -> CPU + model offload + fp8 storage (16gb).
    start = time.perf_counter()
    transformer = random_transformer(sizes.gen3c_config, device, torch.bfloat16)
    synchronize(device)
    out["build_seconds"] = round(time.perf_counter() - start, 2)
    out["parameters"] = sum(p.numel() for p in transformer.parameters())
    # CUDA context, cuBLAS and attention kernels start on a tiny latent, so the first preset's step is not
    # charged for them.
    sample(transformer, num_steps=1, **gen3c_inputs((1, 16, 2, 8, 12), 8, text_width))
    synchronize(device)
    for name in PRESETS:
        memory = MemoryMode.preset(name, device=device)
        result: dict = {"dtype": str(memory.dtype).removeprefix("torch."), "offload": memory.offload,
                        "fp8_storage": memory.fp8_storage}
        out[name] = result
        try:
            transformer = memory.prepare_transformer(transformer)
            reset_peak(device)
            offloaded = transformer if memory.offload == "model" else None
            start = time.perf_counter()
            with memory.on_device(offloaded):
                synchronize(device)
                onloaded = time.perf_counter()
                latent = sample(transformer, num_steps=1, **inputs)
                synchronize(device)
                sampled = time.perf_counter()
                result["peak_gpu_gb"] = peak_gb(device)
            synchronize(device)
            result["seconds_per_step"] = round(sampled - onloaded, 3)
            if offloaded is not None:
                result["onload_seconds"] = round(onloaded - start, 3)
                result["offload_seconds"] = round(time.perf_counter() - sampled, 3)
            result["output_finite"] = bool(torch.isfinite(latent.float()).all())
            result["ok"] = True
        except Exception as exc:  # one preset failing (e.g. out of memory) still measures the others
            result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    failed = [name for name in PRESETS if not out[name]["ok"]]
    if failed:
        raise RuntimeError(f"presets failed: {failed}")


# --------------------------------------------------------------------------------------------- decoder
def decoder_inputs(config, latent: tuple[int, int, int], seed: int = 0) -> dict:
    frames, h, w = latent
    t_out = config.num_output_frames(frames)
    g = torch.Generator().manual_seed(seed)
    return dict(
        images=torch.randn(1, frames, 16, h, w, generator=g),
        plucker=torch.randn(1, frames, 32, h, w, generator=g),
        rays_os=torch.randn(1, t_out, 3, h, w, generator=g),
        rays_ds=torch.nn.functional.normalize(torch.randn(1, t_out, 3, h, w, generator=g), dim=2),
    )


def measure_decoder(model, inputs: dict, device: str, raw: dict, out: dict) -> None:
    """fp32 then bf16 (the same weights and inputs, rounded): raw outputs into ``raw``, times into ``out``."""
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        model.to(dtype)
        cast = {k: v.to(dtype) for k, v in inputs.items()}
        reset_peak(device)
        with torch.inference_mode():
            raw[name] = model.forward_raw(cast["images"], cast["plucker"]).float()
            seconds = best_seconds(lambda cast=cast: model.forward_gaussians(**cast), device, 1)
        out[name] = {"seconds_per_forward": round(seconds, 3), "peak_gpu_gb": peak_gb(device)}


def section_decoder(sizes: Sizes, out: dict) -> None:
    from lyra.model import LyraDecoder, LyraDecoderConfig

    device = sizes.device
    config = dataclasses.replace(LyraDecoderConfig.official("static"), **sizes.decoder_overrides)
    torch.manual_seed(0)
    model = LyraDecoder(config).eval().to(device)
    inputs = {k: v.to(device) for k, v in decoder_inputs(config, sizes.decoder_latent).items()}
    frames, h, w = sizes.decoder_latent
    out.update(parameters=model.num_parameters, latent=[frames, h, w], tokens=frames * (h // 2) * (w // 2))
    raw = {}
    # A true fp32 reference: cuDNN convolutions would otherwise run in TF32 (PyTorch's default).
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        measure_decoder(model, inputs, device, raw, out)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    reference, low = raw["float32"], raw["bfloat16"]
    out["bf16_vs_fp32"] = {
        "relative_l2_error": float((low - reference).norm() / reference.norm()),
        "cosine": float(torch.nn.functional.cosine_similarity(low.flatten(), reference.flatten(), dim=0)),
        "max_abs_error": float((low - reference).abs().max()),
        "fp32_abs_max": float(reference.abs().max()),
    }
    speedup = out["float32"]["seconds_per_forward"] / max(out["bfloat16"]["seconds_per_forward"], 1e-9)
    out["speedup_bf16_over_fp32"] = round(speedup, 2)


# --------------------------------------------------------------------------------------------- trainer
def section_trainer(sizes: Sizes, out: dict) -> None:
    from lyra.distill.config import load_config
    from lyra.distill.train import train
    from lyra.model import LyraDecoder, LyraDecoderConfig

    preset = load_config("tiny-cpu")
    # The released-size decoder (tiny in smoke) on the preset's data, its activation constants kept.
    model = dataclasses.replace(LyraDecoderConfig.official("static"), **sizes.decoder_overrides,
                                dfar=preset.model.dfar, gaussians_prune_ratio=0.0)
    synthetic = dataclasses.replace(preset.data.synthetic, train_scenes=2, eval_scenes=1, trajectories=("left", "right"))
    config = dataclasses.replace(
        preset, model=model, data=dataclasses.replace(preset.data, synthetic=synthetic),
        eval=dataclasses.replace(preset.eval, every=10_000, scenes=1), max_minutes=None,
        threads=None if sizes.device.startswith("cuda") else preset.threads,
    )
    cuda = sizes.device.startswith("cuda")
    out.update(steps=sizes.trainer_steps,
               precision="bf16 autocast" if cuda else "fp32 (the trainer autocasts to bf16 on CUDA only)")
    with tempfile.TemporaryDirectory() as tmp:
        previous = os.environ.get("LYRA_STUDIO_CACHE")
        os.environ["LYRA_STUDIO_CACHE"] = str(Path(tmp) / "cache")  # fresh synthetic data, nothing left behind
        try:
            reset_peak(sizes.device)
            start = time.perf_counter()
            train(config, Path(tmp) / "run", max_steps=sizes.trainer_steps)
            synchronize(sizes.device)
            total = time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop("LYRA_STUDIO_CACHE", None)
            else:
                os.environ["LYRA_STUDIO_CACHE"] = previous
        records = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["split"] == "train"]
    times = [r["time"] for r in steps]
    out.update(
        steps_run=len(steps),
        seconds_total_with_data_and_evals=round(total, 2),
        seconds_per_step=round((times[-1] - times[0]) / max(1, len(times) - 1), 3) if len(times) > 1 else None,
        first_loss=steps[0]["loss"] if steps else None,
        last_loss=steps[-1]["loss"] if steps else None,
        losses_finite=all(math.isfinite(r["loss"]) for r in steps),
        peak_gpu_gb=peak_gb(sizes.device),
    )
    with torch.device("meta"):
        out["decoder_parameters"] = LyraDecoder(model).num_parameters
    if len(steps) != sizes.trainer_steps or not out["losses_finite"]:
        raise RuntimeError(f"expected {sizes.trainer_steps} finite training steps, found {len(steps)} (finite: {out['losses_finite']})")


# ------------------------------------------------------------------------------------------------- DDP
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def section_ddp(sizes: Sizes, out: dict) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from lyra.distill.student import RawForward
    from lyra.model import LyraDecoder, LyraDecoderConfig

    device = sizes.device
    smoke = smoke_sizes()  # a small decoder: the point is the collective, not the model
    config = dataclasses.replace(LyraDecoderConfig.official("static"), **smoke.decoder_overrides)
    inputs = {k: v.to(device) for k, v in decoder_inputs(config, smoke.decoder_latent, seed=1).items()}

    def gradients(wrap: bool) -> tuple[list[torch.Tensor], float]:
        torch.manual_seed(0)
        model = LyraDecoder(config).to(device).train()
        forward = RawForward(model)
        if wrap:  # as lyra.distill.train wraps it (static models leave the time embeddings unused)
            forward = DistributedDataParallel(forward, find_unused_parameters=True)
        synchronize(device)
        start = time.perf_counter()
        raw = forward(inputs["images"], inputs["plucker"], None, 1)
        raw.square().mean().backward()
        synchronize(device)
        seconds = time.perf_counter() - start
        return [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in model.parameters()], seconds

    dist.init_process_group(sizes.ddp_backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
    try:
        plain, _ = gradients(wrap=False)
        wrapped, seconds = gradients(wrap=True)
        check = torch.arange(4.0, device=device)
        dist.all_reduce(check)
        synchronize(device)
    finally:
        dist.destroy_process_group()
    scale = max(float(g.abs().max()) for g in plain)
    difference = max(float((a - b).abs().max()) for a, b in zip(plain, wrapped, strict=True)) / scale
    out.update(backend=sizes.ddp_backend, world_size=1, seconds_forward_backward=round(seconds, 3),
               max_gradient_difference_vs_no_ddp_relative=difference,
               all_reduce_ok=check.tolist() == [0.0, 1.0, 2.0, 3.0])
    # One rank averages over one: identical up to the order of CUDA's atomic adds.
    if difference > 1e-4 or not out["all_reduce_ok"]:
        raise RuntimeError(f"DDP step disagrees with the plain step (max gradient difference {difference})")


SECTIONS: dict[str, Callable[[Sizes, dict], None]] = {
    "render": section_render,
    "gen3c": section_gen3c,
    "decoder": section_decoder,
    "trainer": section_trainer,
    "ddp": section_ddp,
}


def run_section(fn: Callable[[Sizes, dict], None], sizes: Sizes) -> dict:
    """``fn``'s figures plus ``ok``, ``seconds`` and, on failure, ``error`` and the traceback's last lines."""
    out: dict = {}
    start = time.perf_counter()
    try:
        fn(sizes, out)
        out["ok"] = True
    except Exception as exc:
        out["ok"] = False
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback_tail"] = traceback.format_exc().strip().splitlines()[-6:]
    finally:
        gc.collect()  # the section's models go before the next one is built
        with contextlib.suppress(Exception):
            reset_peak(sizes.device)
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def machine(device: str) -> dict:
    info = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
            "load_avg": [round(x, 2) for x in os.getloadavg()], "threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 1e9, 1), cuda=torch.version.cuda)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="the same code on the CPU with tiny sizes (CI)")
    parser.add_argument("--only", nargs="+", choices=sorted(SECTIONS), help="run only these sections")
    args = parser.parse_args(argv)
    sizes = smoke_sizes() if args.smoke else full_sizes()
    report: dict = {"mode": "smoke" if args.smoke else "full", "machine": machine(sizes.device)}
    started = time.perf_counter()
    if sizes.device == "cuda" and not torch.cuda.is_available():
        report["error"] = "no CUDA device: the full run needs one 80 GB GPU (use --smoke on a CPU)"
        print(json.dumps(report, indent=2))
        return 1
    for name in args.only or SECTIONS:
        report[name] = run_section(SECTIONS[name], sizes)
        print(f"[bench/gpu.py] {name}: ok={report[name]['ok']} in {report[name]['seconds']} s", file=sys.stderr)
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    report["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    report["failed"] = [name for name in args.only or SECTIONS if not report[name]["ok"]]
    print(json.dumps(report, indent=2))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

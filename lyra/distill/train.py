"""The self-distillation loop (nanoGPT style: one readable loop, no trainer framework).

Per step: draw the global batch of sample specs from an RNG seeded by ``(seed, step)`` (so a
resumed run and every DDP rank see the same batch), take this rank's share, decode, render the
targets, loss = mean over samples of the weighted losses, backward (DDP averages gradients),
clip, AdamW step, warm-up schedule. The stage (resolution, frames, views, pruning, time) comes
from the cumulative step. Eval on held-out scenes at step 0 (before any update), every
``eval.every`` steps and at the end.

Outputs in ``OUT``: ``metrics.jsonl`` (one JSON object per line: ``split`` "train" or "eval",
``step``, losses or metrics), ``loss.png``, ``train.yaml`` (the resolved config) and
``checkpoint/`` (``model.safetensors`` + ``config.yaml``, loadable by :func:`lyra.model.load_decoder`,
plus ``train_state.pt``: optimizer, scheduler, step and RNG state for an exact resume).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from lyra.bounded_zip import check_zip_members
from lyra.distill.config import TrainConfig
from lyra.distill.data import SDGDataset, draw_spec, eval_specs, find_scenes
from lyra.distill.evaluate import evaluate
from lyra.distill.losses import distillation_loss
from lyra.distill.plot import write_loss_curve
from lyra.distill.student import Conditioner, RawForward, run_student
from lyra.errors import CheckpointError, InputDataError, LyraError
from lyra.fileio import atomic_directory, atomic_write, open_regular, recover_set_aside
from lyra.model.checkpoint import load_decoder, save_decoder
from lyra.model.decoder import LyraDecoder, packed_to_gaussians
from lyra.model.tokenizer import load_cosmos_tokenizer, video_frames
from lyra.progress import Progress, report
from lyra.scene.gaussians import Gaussians
from lyra.teacher.synthetic import VERSION as SYNTHETIC_VERSION

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "train_state.pt"


# ------------------------------------------------------------------ setup
def setup_distributed() -> tuple[int, int, torch.device]:
    """``(rank, world, device)``; joins the torchrun process group when ``WORLD_SIZE`` > 1."""
    from lyra.device import resolve_device
    from lyra.pipeline.teach import rank_and_world

    rank, world = rank_and_world()
    device = resolve_device("auto")  # the rank's GPU (LOCAL_RANK) when CUDA is present, else the CPU
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return rank, world, device


def resolve_data(config: TrainConfig, rank: int, world: int, progress: Progress | None = None) -> tuple[Path, Path, Path]:
    """``(train root, eval root, tokenizer folder)``; synthetic data is made (once, cached) when no root is set."""
    if config.data.root is None:
        from lyra.distill.make_data import make_synthetic_data

        syn = config.data.synthetic
        cache = Path(os.environ.get("LYRA_STUDIO_CACHE", Path.home() / ".cache" / "lyra-studio"))
        recipe = {**config.to_dict()["data"]["synthetic"], "version": SYNTHETIC_VERSION}
        key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
        root = cache / "distill" / f"synthetic-{key[:12]}"
        make_synthetic_data(
            root, train_scenes=syn.train_scenes, eval_scenes=syn.eval_scenes, width=syn.width, height=syn.height,
            latent_frames=syn.latent_frames, trajectories=syn.trajectories, seed=syn.seed,
            rank=rank, world=world, progress=progress,
        )
        if world > 1:
            dist.barrier()
    else:
        root = Path(config.data.root)
    train_root = root / "train" if (root / "train").is_dir() else root
    eval_root = Path(config.data.eval_root) if config.data.eval_root else root / "eval"
    tokenizer = Path(config.data.tokenizer) if config.data.tokenizer else root / "tokenizer"
    return train_root, eval_root, tokenizer


def split_datasets(config: TrainConfig, train_root: Path, eval_root: Path) -> tuple[SDGDataset, SDGDataset]:
    """Train and held-out datasets; without an eval folder the last ``eval.scenes`` scenes are held out."""
    cache = config.data.cache_size
    if eval_root.is_dir():
        return SDGDataset(train_root, cache_size=cache), SDGDataset(eval_root, cache_size=cache)
    scenes = find_scenes(train_root)
    held = max(1, min(config.eval.scenes, len(scenes) - 1))
    if len(scenes) < 2:
        raise InputDataError(f"{train_root}: one scene only and no {eval_root} to hold out; add scenes or ROOT/eval")
    return (SDGDataset(train_root, cache, scenes[:-held]), SDGDataset(train_root, cache, scenes[-held:]))


def build_model(config: TrainConfig, device: torch.device) -> LyraDecoder:
    torch.manual_seed(config.seed)
    model = LyraDecoder(config.model)
    if config.init:  # static and dynamic decoders share their keys: a static checkpoint starts a dynamic run
        try:
            model.load_state_dict(load_decoder(config.init).state_dict())
        except RuntimeError as exc:
            raise CheckpointError(f"{config.init}: does not fit the training config's decoder ({exc})") from exc
    model.gradient_checkpointing = config.gradient_checkpointing
    return model.to(device).train()


def lr_factor(step: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then constant (the official schedule)."""
    return min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0


# ------------------------------------------------------------------ checkpoints
def save_checkpoint(out: Path, model: LyraDecoder, optimizer, scheduler, step: int) -> Path:
    """``out/checkpoint``: decoder folder + ``train_state.pt`` (``step`` = the next step to run), atomically."""
    folder = out / CHECKPOINT_DIR
    with atomic_directory(folder) as tmp:
        save_decoder(model, tmp)
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        with atomic_write(tmp / STATE_FILE) as handle:
            torch.save(state, handle)
    return folder


def load_checkpoint(out: Path, model: LyraDecoder, optimizer, scheduler) -> int:
    """Restore model, optimizer, scheduler and RNG from ``out/checkpoint``; returns the next step."""
    folder = out / CHECKPOINT_DIR
    recover_set_aside(folder)  # a save killed mid-swap set the previous checkpoint aside: bring it back
    if not (folder / STATE_FILE).is_file():
        raise CheckpointError(f"{folder}: nothing to resume (no {STATE_FILE}); run without --resume")
    saved = load_decoder(folder)
    model.load_state_dict(saved.state_dict())
    path = folder / STATE_FILE
    check_zip_members(path, f"a {STATE_FILE}")  # torch's reader would inflate a bomb member whole
    try:
        with open_regular(path, f"a {STATE_FILE}") as handle:
            state = torch.load(handle, map_location="cpu", weights_only=True)
    except LyraError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.load's many failure types (truncated, garbage) become one error
        raise CheckpointError(f"{path}: not a readable training state ({type(exc).__name__}); "
                              "it may be truncated: run without --resume to start over") from None
    missing = [key for key in ("step", "optimizer", "scheduler", "torch_rng") if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{path}: a training state needs step, optimizer, scheduler and torch_rng; "
                              f"missing {missing}: run without --resume to start over")
    try:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        step = int(state["step"])
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise CheckpointError(f"{path}: the training state does not fit this run ({type(exc).__name__}): "
                              "run without --resume to start over") from None
    if step < 0:
        raise CheckpointError(f"{path}: a training state with a step >= 0, found {step}")
    return step


# ------------------------------------------------------------------ the loop
class MetricsLog:
    """``metrics.jsonl`` writer (rank 0 only); flushed every line so a crash loses nothing."""

    def __init__(self, path: Path, enabled: bool, append: bool):
        self.path, self.enabled = path, enabled
        if enabled and not append:
            path.write_text("")

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")


@dataclasses.dataclass
class EvalPreview:
    """What the live view shows after an evaluation: the student's scene for one held-out sample and,
    from that sample's target cameras, the teacher's frames beside the student's renders."""

    gaussians: Gaussians  # relative to the sample's first input camera
    target_rgb: torch.Tensor  # [N, H, W, 3] float in [0, 1]: the teacher's frames
    student_rgb: torch.Tensor  # [N, H, W, 3] float in [0, 1]: the student rendered from the same cameras


@torch.no_grad()
def decode_first(model: LyraDecoder, conditioner: Conditioner, dataset: SDGDataset, spec, stage) -> EvalPreview:
    """The student's Gaussians for one held-out sample and its renders at the sample's target cameras."""
    was_training = model.training
    model.eval()
    try:
        sample = dataset.sample(spec, stage.resolution, stage.latent_frames)
        output = run_student(model, conditioner, [sample], stage.prune_ratio)
    finally:
        model.train(was_training)
    return EvalPreview(
        gaussians=packed_to_gaussians(output.packed[0].float().cpu()),
        target_rgb=sample.target_rgb.float().cpu().clamp(0, 1),
        student_rgb=output.rgb[0].float().cpu().clamp(0, 1),
    )


def train(
    config: TrainConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    on_eval: Callable[[int, EvalPreview], None] | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run (or resume) training into ``out``; returns the last eval metrics.

    ``max_steps`` stops early at that cumulative step (CI); ``on_eval(step, preview)`` gets an
    :class:`EvalPreview` of the first held-out sample on rank 0 after each evaluation (the live viewer).
    """
    started = time.monotonic()
    out = Path(out)
    rank, world, device = setup_distributed()
    if config.threads and device.type == "cpu":
        torch.set_num_threads(config.threads)
    if config.batch_size % world:
        raise InputDataError(f"batch_size {config.batch_size} must be divisible by the {world} ranks")
    out.mkdir(parents=True, exist_ok=True)
    train_root, eval_root, tokenizer = resolve_data(config, rank, world, progress)
    train_set, eval_set = split_datasets(config, train_root, eval_root)
    conditioner = Conditioner(load_cosmos_tokenizer(tokenizer, device=device))
    model = build_model(config, device)
    forward = RawForward(model)
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Static models never use their time embeddings: those parameters get no gradient.
        forward = DistributedDataParallel(forward, find_unused_parameters=True)
    opt = config.optim
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt.lr, betas=opt.betas, weight_decay=opt.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, opt.warmup_steps))
    step = load_checkpoint(out, model, optimizer, scheduler) if resume else 0
    if rank == 0:
        config.to_yaml(out / "train.yaml")
    log = MetricsLog(out / "metrics.jsonl", rank == 0, append=resume)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    end = min(config.total_steps, max_steps) if max_steps is not None else config.total_steps
    metrics: dict = {}

    def run_eval(at: int) -> None:
        nonlocal metrics
        if rank == 0:
            stage = config.stage_at(min(at, end - 1))
            specs = eval_specs(eval_set, stage.views, config.eval.targets, video_frames(stage.latent_frames))
            metrics = evaluate(model, conditioner, eval_set, specs[: config.eval.scenes], stage.resolution,
                               stage.latent_frames, stage.prune_ratio)
            log.write({"split": "eval", "step": at, **metrics, "time": time.monotonic() - started})
            write_loss_curve(out / "metrics.jsonl", out / "loss.png")
            if on_eval is not None:
                on_eval(at, decode_first(model, conditioner, eval_set, specs[0], stage))
        if world > 1:
            dist.barrier()

    if step % config.eval.every == 0:
        run_eval(step)
    while step < end:
        stage = config.stage_at(step)
        rng = np.random.default_rng([config.seed, step])
        num_frames = video_frames(stage.latent_frames)
        specs = [draw_spec(rng, train_set, stage.views, stage.targets, num_frames, stage.dynamic)
                 for _ in range(config.batch_size)]
        samples = [train_set.sample(s, stage.resolution, stage.latent_frames) for s in specs[rank::world]]
        output = run_student(model, conditioner, samples, stage.prune_ratio, stage.dynamic, autocast, forward)
        weights = config.loss if stage.prune_ratio > 0 else dataclasses.replace(config.loss, opacity=0.0)
        total, parts = 0.0, {}
        for b, sample in enumerate(samples):
            loss, items = distillation_loss(
                output.rgb[b], sample.target_rgb.to(device), weights, output.depth[b],
                sample.target_depth.to(device), output.opacities[b],
            )
            total = total + loss / len(samples)
            for k, v in items.items():
                parts[k] = parts.get(k, 0.0) + v / len(samples)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opt.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        record = {"loss": float(total.detach()), **parts}
        if world > 1:
            values = torch.tensor(list(record.values()), dtype=torch.float64)
            dist.all_reduce(values)
            record = dict(zip(record, (values / world).tolist(), strict=True))
        lr = scheduler.get_last_lr()[0]
        log.write({"split": "train", "step": step, **record, "grad_norm": float(grad_norm), "lr": lr,
                   "time": time.monotonic() - started})
        report(progress, step / end, f"step {step}/{end} loss {record['loss']:.4f}")
        out_of_time = config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes
        if world > 1:
            flag = torch.tensor([float(out_of_time)])
            dist.all_reduce(flag)
            out_of_time = bool(flag.item() > 0)
        last = step >= end or out_of_time
        if rank == 0 and (step % config.checkpoint_every == 0 or last):
            save_checkpoint(out, model, optimizer, scheduler, step)
        if step % config.eval.every == 0 or last:
            run_eval(step)
        if out_of_time:
            break
    if world > 1:
        dist.barrier()
    return metrics


def psnr_gain(metrics_path: str | os.PathLike) -> float:
    """Last eval PSNR minus the step-0 eval PSNR of a ``metrics.jsonl``."""
    evals = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if '"eval"' in line]
    evals = [e for e in evals if e.get("split") == "eval"]
    if not evals or evals[0]["step"] != 0:
        return math.nan
    return evals[-1]["psnr"] - evals[0]["psnr"]

"""Training configuration: one YAML file (or a shipped preset) read into typed dataclasses.

Top-level keys: ``model`` (LyraDecoderConfig overrides of the official config, or ``kind``),
``data``, ``optim``, ``loss``, ``eval``, ``stages`` and a few loop settings. Stages follow the
official table: each runs until the cumulative step ``steps_to`` (so a resumed run continues in
the right stage). Presets live in ``lyra/distill/presets/NAME.yaml``.
"""

from __future__ import annotations

import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lyra.distill.losses import LossWeights
from lyra.errors import InputDataError
from lyra.model.config import LyraDecoderConfig
from lyra.model.tokenizer import latent_frames as latent_frames_of
from lyra.safe_yaml import parse_yaml


@dataclasses.dataclass(frozen=True)
class Stage:
    steps_to: int  # cumulative step at which this stage ends
    resolution: tuple[int, int] = (176, 320)  # (H, W) of the rendered targets
    frames: int = 17  # video frames per input view (latent frames = (frames - 1) / 8 + 1)
    views: int = 1  # input trajectories fused into one sample
    targets: int = 4  # target frames rendered per sample
    prune_ratio: float = 0.0  # > 0: keep the most opaque (1 - ratio) and add the opacity loss
    dynamic: bool = False  # time conditioning (one target time per sample)

    @property
    def latent_frames(self) -> int:
        return latent_frames_of(self.frames)


@dataclasses.dataclass(frozen=True)
class Optim:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0


@dataclasses.dataclass(frozen=True)
class SyntheticData:
    train_scenes: int = 16
    eval_scenes: int = 2
    width: int = 96
    height: int = 64
    latent_frames: int = 2
    trajectories: tuple[str, ...] = ("left", "right", "up", "zoom_out", "zoom_in", "clockwise")
    seed: int = 1000


@dataclasses.dataclass(frozen=True)
class Data:
    root: str | None = None  # ROOT with train/ and eval/ (or scenes directly); None = synthetic data
    eval_root: str | None = None  # default ROOT/eval
    tokenizer: str | None = None  # Cosmos tokenizer folder; default ROOT/tokenizer
    synthetic: SyntheticData = SyntheticData()
    cache_size: int = 64


@dataclasses.dataclass(frozen=True)
class Eval:
    every: int = 500
    scenes: int = 4  # held-out scenes evaluated (first ones)
    targets: int = 4


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    name: str = "custom"
    model: LyraDecoderConfig = LyraDecoderConfig.official("static")
    init: str | None = None  # start from this checkpoint (folder or official .pt)
    data: Data = Data()
    optim: Optim = Optim()
    loss: LossWeights = LossWeights()
    eval: Eval = Eval()
    stages: tuple[Stage, ...] = (Stage(steps_to=1000),)
    batch_size: int = 1  # global batch (split over DDP ranks)
    seed: int = 0
    checkpoint_every: int = 1000
    max_minutes: float | None = None  # stop (and save) after this much wall time
    gradient_checkpointing: bool = True
    threads: int | None = None  # torch threads on CPU

    @property
    def total_steps(self) -> int:
        return self.stages[-1].steps_to

    def stage_at(self, step: int) -> Stage:
        for stage in self.stages:
            if step < stage.steps_to:
                return stage
        return self.stages[-1]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["model"] = self.model.to_dict()
        return _lists(data)

    def to_yaml(self, path: str | os.PathLike) -> None:
        from lyra.fileio import atomic_write

        with atomic_write(Path(path), "w") as handle:
            yaml.safe_dump(self.to_dict(), handle, sort_keys=False)


def _lists(value):
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def _build(cls, data: dict[str, Any] | None, where: str):
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputDataError(f"{where}: unknown keys {unknown} (known: {sorted(names)})")
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = tuple(value)
    return cls(**data)


def config_from_dict(raw: dict[str, Any], source: str = "config") -> TrainConfig:
    """Typed config from a YAML mapping; raises InputDataError naming the bad key."""
    raw = dict(raw)
    try:
        model_raw = dict(raw.pop("model", None) or {})
        kind = model_raw.pop("kind", "static")
        model = dataclasses.replace(LyraDecoderConfig.official(kind), **model_raw)
        data_raw = dict(raw.pop("data", None) or {})
        synthetic = _build(SyntheticData, data_raw.pop("synthetic", None), f"{source}: data.synthetic")
        data = _build(Data, {**data_raw, "synthetic": synthetic}, f"{source}: data")
        stages = tuple(_build(Stage, s, f"{source}: stages[{i}]") for i, s in enumerate(raw.pop("stages", []) or []))
        parts = {
            "model": model,
            "data": data,
            "optim": _build(Optim, raw.pop("optim", None), f"{source}: optim"),
            "loss": _build(LossWeights, raw.pop("loss", None), f"{source}: loss"),
            "eval": _build(Eval, raw.pop("eval", None), f"{source}: eval"),
        }
        if stages:
            parts["stages"] = stages
        config = _build(TrainConfig, {**raw, **parts}, source)
    except (TypeError, ValueError) as exc:
        raise InputDataError(f"{source}: invalid training config ({exc})") from exc
    steps = [s.steps_to for s in config.stages]
    if steps != sorted(steps) or len(set(steps)) != len(steps) or steps[0] < 1:
        raise InputDataError(f"{source}: stage steps_to must increase strictly from >= 1, found {steps}")
    for stage in config.stages:
        if stage.resolution[0] % 2 or stage.resolution[1] % 2 or stage.frames % 8 != 1:
            raise InputDataError(f"{source}: stage {stage} needs an even resolution and frames = 8k + 1")
    return config


def preset_names() -> list[str]:
    folder = resources.files("lyra.distill") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_config(name_or_path: str | os.PathLike) -> TrainConfig:
    """A preset name (``tiny-cpu``, ``lyra-static``, ...) or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputDataError(f"{path}: training config not found")
        text, source = path.read_text(), str(path)
    else:
        preset = resources.files("lyra.distill") / "presets" / f"{name_or_path}.yaml"
        if not preset.is_file():
            raise InputDataError(f"unknown preset {name_or_path!r}; presets: {', '.join(preset_names())}")
        text, source = preset.read_text(), f"preset {name_or_path}"
    raw = parse_yaml(text, source, InputDataError)  # no aliases, shallow, small (lyra.safe_yaml)
    if not isinstance(raw, dict):
        raise InputDataError(f"{source}: expected a YAML mapping")
    return config_from_dict(raw, source)

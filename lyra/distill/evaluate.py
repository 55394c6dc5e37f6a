"""Held-out evaluation of a student: PSNR, SSIM, LPIPS (when available), depth abs-rel, Chamfer.

* PSNR / SSIM on RGB in [0, 1] (SSIM: 11x11 Gaussian window, sigma 1.5, the usual constants);
* depth abs-rel ``mean |a d + b - d*| / d*`` after the least-squares scale/shift ``(a, b)`` that
  best maps the student's depth onto the teacher's, over pixels with known teacher depth;
* Chamfer: symmetric mean nearest-neighbour distance between the centres of the student's most
  opaque fifth of Gaussians (the share the released models keep; world coordinates) and the true surface points of a synthetic
  scene (``geometry.npz``), each side subsampled to at most ``max_points``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.distill import losses
from lyra.distill.data import SampleSpec, SDGDataset, eval_specs
from lyra.distill.student import Conditioner, run_student
from lyra.errors import InputDataError
from lyra.model.decoder import LyraDecoder
from lyra.model.tokenizer import video_frames
from lyra.progress import Progress, report
from lyra.scene.gaussians import Gaussians


def psnr(pred: Tensor, target: Tensor) -> float:  # [..., H, W, 3] in [0, 1]
    mse = F.mse_loss(pred.float(), target.float()).item()
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> float:  # [N, H, W, 3]
    x, y = (t.float().permute(0, 3, 1, 2) for t in (pred, target))  # [N, 3, H, W]
    coords = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.device)
    kernel = (g[:, None] * g[None, :]).expand(3, 1, window, window)
    blur = lambda t: F.conv2d(t, kernel, padding=window // 2, groups=3)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return value.mean().item()


def depth_abs_rel(pred: Tensor, target: Tensor) -> float | None:  # [N, H, W] each
    """Abs-rel after per-image least-squares scale and shift; None when no pixel has a known depth."""
    errors = []
    for p, t in zip(pred.float(), target.float(), strict=True):
        valid = torch.isfinite(t) & (t > 0) & torch.isfinite(p)
        if valid.sum() < 2:
            continue
        a = torch.stack([p[valid], torch.ones_like(p[valid])], dim=-1)  # [M, 2]
        solution = torch.linalg.lstsq(a.double(), t[valid].double()[:, None]).solution[:, 0]
        aligned = (a.double() @ solution).float()
        errors.append(((aligned - t[valid]).abs() / t[valid]).mean())
    return float(torch.stack(errors).mean()) if errors else None


def chamfer_distance(a: Tensor, b: Tensor, max_points: int = 4096, seed: int = 0) -> float:  # [P, 3], [Q, 3]
    gen = torch.Generator().manual_seed(seed)

    def subsample(points: Tensor) -> Tensor:
        if len(points) <= max_points:
            return points
        return points[torch.randperm(len(points), generator=gen)[:max_points].to(points.device)]

    a, b = subsample(a.float()), subsample(b.float())
    dist = torch.cdist(a, b)  # [P, Q]
    return 0.5 * (dist.min(1).values.mean() + dist.min(0).values.mean()).item()


@torch.no_grad()
def evaluate(
    model: LyraDecoder,
    conditioner: Conditioner,
    dataset: SDGDataset,
    specs: list[SampleSpec],
    resolution: tuple[int, int],
    latent_frames: int,
    prune_ratio: float = 0.0,
) -> dict[str, float]:
    """Mean metrics over ``specs`` (one held-out sample each); the model is put back in its mode."""
    was_training = model.training
    model.eval()
    sums: dict[str, list[float]] = {}
    try:
        for spec in specs:
            sample = dataset.sample(spec, resolution, latent_frames)
            out = run_student(model, conditioner, [sample], prune_ratio)
            rgb, target = out.rgb[0].clamp(0, 1).cpu(), sample.target_rgb
            values = {"psnr": psnr(rgb, target), "ssim": ssim(rgb, target)}
            if losses.lpips_available():
                values["lpips"] = losses.lpips_loss(rgb, target).item()
            depth = depth_abs_rel(out.depth[0].cpu(), sample.target_depth)
            if depth is not None:
                values["depth_abs_rel"] = depth
            geometry = dataset.geometry(spec.scene)
            if geometry is not None:
                packed = out.packed[0].float().cpu()
                keep = max(1, len(packed) // 5)  # the most opaque fifth, as the released models keep
                opaque = packed[packed[:, 3].argsort(descending=True)[:keep], :3]
                ref = sample.reference_c2w
                values["chamfer"] = chamfer_distance(opaque @ ref[:3, :3].T + ref[:3, 3], geometry)
            for k, v in values.items():
                sums.setdefault(k, []).append(v)
    finally:
        model.train(was_training)
    return {k: sum(v) / len(v) for k, v in sums.items()}


def tokenizer_candidates(data: str | os.PathLike) -> list[Path]:
    """Where a data root's tokenizer is looked for, first match wins: ``tokenizer/`` beside its scenes, or up to
    two folders above them (make-data writes it at the data root; ``eval/`` sits one level down)."""
    data = Path(data)
    scenes_root = data / "eval" if (data / "eval").is_dir() else data
    return [f / "tokenizer" for f in (scenes_root, *scenes_root.resolve().parents[:2])]


def held_out_scenes(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    tokenizer: str | os.PathLike | None = None,
    views: int = 1,
    max_scenes: int = 4,
    progress: Progress | None = None,
) -> list[tuple[str, Gaussians]]:
    """The decoder's Gaussians for the first ``max_scenes`` held-out scenes of ``data``, in world coordinates.

    ``data`` is a data root (its ``eval/`` is used when present) or a folder of scenes; the tokenizer
    defaults to the ``tokenizer/`` folder beside the scenes (as written by make-data).
    """
    from lyra.model.checkpoint import load_decoder
    from lyra.model.decoder import packed_to_gaussians
    from lyra.model.tokenizer import load_cosmos_tokenizer

    data = Path(data)
    scenes_root = data / "eval" if (data / "eval").is_dir() else data
    if tokenizer is None:
        found = [c for c in tokenizer_candidates(data) if (c / "config.json").is_file()]
        if not found:
            raise InputDataError(f"no tokenizer/ found beside {data}; give the Cosmos tokenizer folder")
        tokenizer = found[0]
    dataset = SDGDataset(scenes_root)
    model = load_decoder(checkpoint)
    conditioner = Conditioner(load_cosmos_tokenizer(tokenizer))
    latent_frames, size = dataset.stored_shape()
    specs = eval_specs(dataset, views, 1, video_frames(latent_frames))[:max_scenes]
    out = []
    with torch.no_grad():
        for i, spec in enumerate(specs):
            report(progress, i / len(specs), f"decoding {dataset.scenes[spec.scene].name}")
            sample = dataset.sample(spec, size, latent_frames)
            packed = run_student(model, conditioner, [sample]).packed[0].float().cpu()
            ref = sample.reference_c2w
            packed[:, :3] = packed[:, :3] @ ref[:3, :3].T + ref[:3, 3]  # relative -> world
            out.append((dataset.scenes[spec.scene].name, packed_to_gaussians(packed)))
    report(progress, 1.0, "done")
    return out

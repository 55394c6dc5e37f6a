"""Benchmark image -> scene generation on CPU; prints JSON only.

* ``lift``: :func:`lyra.pipeline.lift_image` at 704x1280 (Lyra's resolution), excluding the depth
  network: best-of-N seconds and the splat count, against a named baseline measured in the same run:
  ``unproject_only``, the bare per-pixel unprojection (points, no shapes, no opacities), so the ratio
  shows what the Gaussian shapes and edge opacities cost on top of the geometry every lift needs.
* ``pipeline``: per-stage wall times of :func:`lyra.pipeline.generate.generate_scene` with tiny
  random models (tokenizer, decoder) and the lift teacher, the time inside those networks and
  what is left outside them (I/O of the SDG folders, cameras, bookkeeping), and a second run over
  the finished work folder (every stage reused: the resume overhead).

Usage: python bench/generate.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_lift(height: int, width: int, repeats: int) -> dict:
    from lyra.pipeline import lift_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    # A scene-like depth: a slanted floor with a box in front (real edges for the opacity rule).
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    depth = np.broadcast_to(4.0 - 2.0 * rows, (height, width)).copy()
    depth[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = 1.5
    focal = 0.5 * width / np.tan(np.radians(30.0))
    intrinsics = [focal, focal, width / 2, height / 2]
    lift_image(image, depth, intrinsics)  # warm-up
    seconds = best_of(lambda: lift_image(image, depth, intrinsics), repeats)
    count = len(lift_image(image, depth, intrinsics))

    def unproject_only():
        z = torch.from_numpy(depth)
        v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
        return torch.stack([(u - intrinsics[2]) / focal * z, (v - intrinsics[3]) / focal * z, z], -1)

    baseline = best_of(unproject_only, repeats)
    return {
        "size": [height, width],
        "seconds": round(seconds, 4),
        "splats": count,
        "target_seconds": 2.0,
        "baseline": {"name": "unproject_only", "seconds": round(baseline, 4)},
        "ratio_to_baseline": round(seconds / baseline, 2),
    }


def bench_pipeline() -> dict:
    """Per-stage wall time of generate_scene with tiny random models, and the time inside the networks."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from diffusers import AutoencoderKLCosmos

    from lyra.model import LyraDecoder, LyraDecoderConfig
    from lyra.pipeline.depth import default_intrinsics, make_depth_map
    from lyra.pipeline.generate import generate_scene
    from lyra.pipeline.inputs import Frames
    from lyra.pipeline.lift import lift_image
    from lyra.pipeline.request import GenerateRequest
    from lyra.teacher.lift import LiftTeacher

    torch.manual_seed(0)
    vae = AutoencoderKLCosmos(
        encoder_block_out_channels=(8, 8, 8, 8), decode_block_out_channels=(8, 8, 8, 8), attention_resolutions=(),
        num_layers=1, resolution=64, latents_mean=[0.0] * 256, latents_std=[1.0] * 256,
    ).eval()
    config = dataclasses.replace(
        LyraDecoderConfig.official("static"), enc_depth=2, llrm_7m1t_index=2, enc_embed_dim=32, enc_num_heads=2,
        mamba_d_state=8, mamba_headdim=16, mamba_chunk_size=16, gaussians_prune_ratio=0.0,
    )
    decoder = LyraDecoder(config).eval()
    height, width, frames = 32, 48, 9
    settings = GenerateRequest(input="bench.png", backend="lyra", trajectories=["left", "right"], num_frames=frames,
                               size=(width, height), prune_ratio=0.0)
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8))

    class ConstantDepth:
        kind = "constant"

        def predict(self, image, *, intrinsics=None, progress=None):
            return make_depth_map(torch.full(image.shape[:2], 2.0), default_intrinsics(width, height), "bench")

    network = {"teacher (render + tokenizer)": 0.0, "decoder + conditioning encoders": 0.0}
    teacher = LiftTeacher(vae, lift_image)
    original_generate = teacher.generate

    in_teacher = {"now": False}

    def timed_generate(*args, **kwargs):
        start, in_teacher["now"] = time.perf_counter(), True
        try:
            return original_generate(*args, **kwargs)
        finally:
            network["teacher (render + tokenizer)"] += time.perf_counter() - start
            in_teacher["now"] = False

    teacher.generate = timed_generate
    original_forward, original_encode = decoder.forward_gaussians, vae.encode

    def timed(fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if not in_teacher["now"]:  # the teacher's own encodes are in its bucket already
                    network["decoder + conditioning encoders"] += time.perf_counter() - start
        return wrapper

    decoder.forward_gaussians, vae.encode = timed(original_forward), timed(original_encode)
    marks: list[tuple[float, str]] = []

    def progress(fraction, text):
        stage = "depth" if text.startswith("depth") else "teacher" if text.startswith("trajectory") else "decode"
        if not marks or marks[-1][1] != stage:
            marks.append((time.perf_counter(), stage))

    with tempfile.TemporaryDirectory() as work:
        start = time.perf_counter()
        generate_scene(Frames(image), settings, work_dir=Path(work), teacher=teacher, decoder=decoder, tokenizer=vae,
                       estimator=ConstantDepth(), progress=progress)
        total = time.perf_counter() - start
        resume_start = time.perf_counter()
        generate_scene(Frames(image), settings, work_dir=Path(work), teacher=teacher, decoder=decoder, tokenizer=vae,
                       estimator=ConstantDepth())
        resumed = time.perf_counter() - resume_start
    ends = [m[0] for m in marks[1:]] + [start + total]
    stage_seconds = {stage: round(end - begin, 4) for (begin, stage), end in zip(marks, ends, strict=True)}
    inside = sum(network.values())
    return {
        "models": "tiny random (tokenizer 8 channels, decoder width 32, 2 blocks)",
        "size": [height, width], "frames": frames, "trajectories": len(settings.trajectories),
        "stage_seconds": stage_seconds,
        "network_seconds": {k: round(v, 4) for k, v in network.items()},
        "total_seconds": round(total, 4),
        "outside_networks_seconds": round(total - min(inside, total), 4),
        "resume_all_stages_done_seconds": round(resumed, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),  # figures on a busy machine are inflated
        "lift": bench_lift(704, 1280, 2 if args.quick else 5),
        "pipeline": bench_pipeline(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The Lyra pipeline: image -> depth -> GEN3C along camera trajectories -> SDG folder -> decoder -> Gaussians.

Stages, each reporting progress (:mod:`lyra.progress`), each cancellable, each
leaving its result in ``work_dir`` so that a run resumes where it stopped:

1. ``input/``: the image fitted to the generation size (centre crop to its
   aspect, then resize; intrinsics follow), its metric depth and intrinsics;
2. ``sdg/<index>/``: one trajectory at a time, the teacher's video, latents,
   cameras and depth, in the official SDG layout (:mod:`lyra.pipeline.sdg`),
   folder names the Lyra trajectory indices (left 0, right 1, up 2, zoom_out 3,
   zoom_in 4, clockwise 5; down 6, counterclockwise 7);
3. ``scene/``: the decoded Gaussians (``scene.ply``, or a sequence folder for 4D).

The 3D cache (unprojection of the image with its depth, forward warping into
each camera) lives inside the teacher (:mod:`lyra.teacher`), which the
pipeline calls per trajectory through the one engine, :mod:`lyra.pipeline.teach`
(trajectories shared round-robin over torchrun's ranks). Every stage folder is
written atomically and ends with ``stage.json`` holding a key of everything the
stage depends on; a folder whose key differs (other seed, steps, input, decoder
checkpoint, teacher weights, ...) is recomputed. The options come from one
:class:`lyra.pipeline.request.GenerateRequest`; :func:`lyra.pipeline.request.run`
is the way in.

Video -> 4D (``frames.is_video``): per-frame depth (from a ViPE-style folder or
the depth network), each Lyra trajectory composed with each frame's pose
(frame ``i`` of a trajectory is input frame ``i`` seen from the preset's camera
``i`` relative to that frame's camera), a teacher with a video mode
(``generate_video``), then the dynamic decoder at the target frames.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError, LyraError
from lyra.fileio import atomic_directory
from lyra.pipeline.depth import DepthEstimator
from lyra.pipeline.generate_models import (
    decoder_identity,
    default_decoder,
    default_teacher,
    require_models,
    teacher_identity,
)
from lyra.pipeline.inputs import Frames
from lyra.pipeline.preview import frame_depth, relative_poses
from lyra.pipeline.request import CUSTOM, GenerateRequest
from lyra.pipeline.teach import (
    Unit,
    barrier,
    is_finished,
    mark_finished,
    rank_and_world,
    read_stage_key,
    stage_key,
    start_ranks,
    teach,
)
from lyra.progress import Progress, report, stages, subrange
from lyra.render.camera import Camera
from lyra.render.trajectories import TRAJECTORY_FOLDERS, decode_order, lyra_trajectory
from lyra.scene import Gaussians, GaussianSequence, load, save

SDG_NAME = "scene"


# --------------------------------------------------------------------------- stage 1: input
def fit_to_size(
    image: Tensor,  # [H, W, 3] uint8
    depth: Tensor | None,  # [H, W] z-depth, 0 = none
    intrinsics: Tensor,  # [4]
    width: int,
    height: int,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Centre-crop to ``width / height``'s aspect, then resize (area for colour, nearest for depth).

    The principal point moves with the crop; everything scales with the resize
    (pixel centres at +0.5 keep the pinhole model exact).
    """
    h, w = image.shape[:2]
    crop_w, crop_h = (w, round(w * height / width)) if w / h < width / height else (round(h * width / height), h)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    image = image[top : top + crop_h, left : left + crop_w]
    fitted = F.interpolate(image.permute(2, 0, 1)[None].float(), size=(height, width), mode="area")[0]
    fitted = fitted.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
    sx, sy = width / crop_w, height / crop_h
    k = intrinsics.double()
    new_k = torch.stack([k[0] * sx, k[1] * sy, (k[2] - left) * sx, (k[3] - top) * sy]).float()
    if depth is not None:
        depth = depth[top : top + crop_h, left : left + crop_w]
        depth = F.interpolate(depth[None, None].float(), size=(height, width), mode="nearest-exact")[0, 0]
    return fitted, depth, new_k


def input_key(frames: Frames, request: GenerateRequest, estimator: DepthEstimator | None,
              intrinsics: Sequence[float] | None) -> str:
    """Everything the input stage depends on: the pixels, the depth file's bytes, the camera, size and depth model
    (its kind and a digest of its weights: another checkpoint of the same kind makes other depth)."""
    from lyra.model.checkpoint import module_fingerprint

    digest = hashlib.sha256(frames.frames.numpy().tobytes()).hexdigest()[:16]
    depth_digest = hashlib.sha256(Path(request.depth).read_bytes()).hexdigest()[:16] if request.depth else None
    depth_model = None
    if estimator is not None:
        network = getattr(estimator, "model", None)
        weights = module_fingerprint(network) if isinstance(network, torch.nn.Module) else type(estimator).__qualname__
        depth_model = {"kind": getattr(estimator, "kind", None), "weights": weights}
    return stage_key({"frames": digest, "depth_file": depth_digest, "intrinsics": intrinsics, "size": list(request.size),
                      "estimator": depth_model, "units": request.depth_units})


def prepare_input(
    frames: Frames,
    request: GenerateRequest,
    work_dir: Path,
    *,
    estimator: DepthEstimator | None,
    intrinsics: Sequence[float] | None,
    progress: Progress | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Stage 1 -> ``(images [F, H, W, 3] uint8, depth [F, H, W], intrinsics [F, 4], c2w [F, 4, 4] or None)``.

    The depth file and its units come from ``request`` (``depth``, ``depth_units``); ``intrinsics`` are
    the input's camera as :func:`lyra.pipeline.request.run` chose them (None: the depth model's or the default).
    """
    folder = work_dir / "input"
    depth_file = request.depth
    key = input_key(frames, request, estimator, intrinsics)
    if is_finished(folder, key):
        report(progress, 1.0, "input: reused")
        with np.load(folder / "input.npz") as data:
            c2w = torch.from_numpy(data["c2w"]) if "c2w" in data else None
            return (torch.from_numpy(data["images"]), torch.from_numpy(data["depth"]),
                    torch.from_numpy(data["intrinsics"]), c2w)
    images, depths, ks = [], [], []
    count = frames.frames.shape[0]
    for i in range(count):
        step = subrange(progress, i / count, (i + 1) / count, f"depth {i + 1}/{count}: " if count > 1 else "depth: ")
        # Depth first at the input size (a depth file matches the input), then both are fitted together.
        report(step, 0.0, "estimating")
        found = frame_depth(frames, i, depth_file=depth_file, estimator=estimator, intrinsics=intrinsics,
                            png_units_per_metre=request.depth_units, progress=step)
        image, depth, k = fit_to_size(frames.frames[i], found.depth, found.intrinsics, request.width, request.height)
        images.append(image), depths.append(depth), ks.append(k)
        report(step, 1.0, "ready")
    arrays = {"images": torch.stack(images).numpy(), "depth": torch.stack(depths).numpy(), "intrinsics": torch.stack(ks).numpy()}
    if frames.c2w is not None:
        arrays["c2w"] = relative_poses(frames.c2w).float().numpy()
    with atomic_directory(folder) as tmp:
        np.savez(tmp / "input.npz", **arrays)
        mark_finished(tmp, key)
    c2w = torch.from_numpy(arrays["c2w"]) if "c2w" in arrays else None
    return torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["depth"]), torch.from_numpy(arrays["intrinsics"]), c2w


# --------------------------------------------------------------------------- stage 2: trajectories
def trajectory_cameras(
    name: str,
    request: GenerateRequest,
    intrinsics: Tensor,  # [4] or [F, 4]
    *,
    poses: Tensor | None = None,  # [F, 4, 4] input video poses (relative to frame 0) for 4D
    center_depth: float = 1.0,
) -> Camera:  # [F]
    """Lyra preset ``name`` (its distance drawn from the preset's range with the run's seed, times the movement).

    ``custom``: the keyframed path of ``request.custom_path``, made relative to its first camera (the
    input view) and scaled by the movement factor, with the input's intrinsics (Lyra keeps them fixed).
    With ``poses``, camera ``i`` is the preset's camera ``i`` placed relative to input frame ``i``'s camera.
    """
    frames, width, height = request.num_frames, request.width, request.height
    if name == CUSTOM:
        from lyra.render.paths import CameraPath

        sampled, _ = CameraPath.load(request.custom_path).sample(frames, width, height)
        c2w = torch.linalg.inv(sampled.c2w[0].double()) @ sampled.c2w.double()
        c2w[:, :3, 3] *= request.movement
        k = torch.as_tensor(intrinsics, dtype=torch.float32).expand(frames, 4).clone()
        camera = Camera(c2w.float(), k, width, height)
    else:
        index = list(TRAJECTORY_FOLDERS).index(name)
        rng = np.random.default_rng([request.seed, index])
        camera = lyra_trajectory(
            name, frames, distance_factor=request.movement, center_depth=center_depth, rng=rng,
            width=width, height=height, intrinsics=intrinsics,
        )
    if poses is None:
        return camera
    if poses.shape[0] != frames:
        raise InputDataError(f"num_frames: 4D needs {frames} input frames, found {poses.shape[0]}")
    return Camera(poses.to(camera.c2w) @ camera.c2w, camera.intrinsics, camera.width, camera.height)


def trajectory_key(request: GenerateRequest, name: str, input_key: str, teacher: dict) -> str:
    """Everything a trajectory folder depends on: the input, the trajectory and its options, the teacher."""
    custom = hashlib.sha256(Path(request.custom_path).read_bytes()).hexdigest() if name == CUSTOM else None
    return stage_key({"input": input_key, "trajectory": name, "seed": request.seed, "steps": request.steps,
                      "guidance": request.guidance, "movement": request.movement, "frames": request.num_frames,
                      "path": custom, "teacher": teacher})


def trajectory_units(request: GenerateRequest, sdg: Path, input_key: str, teacher: dict, *, name: str = SDG_NAME,
                     source: str = "input") -> list[Unit]:
    """One unit per trajectory of ``request``, in its order (the trajectory folder names of TRAJECTORY_FOLDERS)."""
    return [Unit(str(sdg / TRAJECTORY_FOLDERS[t]), name, t, source, trajectory_key(request, t, input_key, teacher))
            for t in request.trajectories]


def teach_trajectories(
    get_teacher,
    images: Tensor,
    depth: Tensor,
    intrinsics: Tensor,
    poses: Tensor | None,
    request: GenerateRequest,
    units: Sequence[Unit],
    progress: Progress | None,
    *,
    rank: int | None = None,
    world: int | None = None,
) -> list[Unit]:
    """Stage 2: this rank's trajectory folders through :func:`lyra.pipeline.teach.teach`; returns those made.

    ``get_teacher()`` is called only when a trajectory is missing (loading GEN3C takes minutes).
    """
    dynamic = images.shape[0] > 1
    center = float(depth[0][depth[0] > 0].median()) if dynamic and (depth[0] > 0).any() else 1.0

    def make(unit: Unit, step: Progress | None):
        camera = trajectory_cameras(unit.trajectory, request, intrinsics[0] if not dynamic else intrinsics,
                                    poses=poses, center_depth=center)
        teacher = get_teacher()
        if dynamic:
            if not hasattr(teacher, "generate_video"):
                raise LyraError(f"the teacher {type(teacher).__name__} has no video mode (generate_video) for 4D")
            output = teacher.generate_video(images, [camera], depth=depth, intrinsics=intrinsics, c2w=poses,
                                            names=[unit.trajectory], progress=step)
        else:
            output = teacher.generate(images[0], [camera], depth=depth[0], intrinsics=intrinsics[0],
                                      names=[unit.trajectory], progress=step)
        return output.trajectories[0]

    return teach(units, make, rank=rank, world=world, progress=progress)


# --------------------------------------------------------------------------- the whole run
def generate_scene(
    frames: Frames,
    request: GenerateRequest,
    *,
    work_dir: str | os.PathLike,
    teacher=None,
    decoder=None,
    tokenizer=None,
    tokenizer_folder: str | os.PathLike | None = None,
    estimator: DepthEstimator | None = None,
    intrinsics: Sequence[float] | None = None,
    progress: Progress | None = None,
) -> Gaussians | GaussianSequence | None:
    """Run (or resume) the lyra backend in ``work_dir``; models not given are loaded from the model registry.

    Under torchrun (``WORLD_SIZE`` > 1) rank 0 prepares the input, every rank makes its round-robin
    share of the trajectories, all wait at a barrier, and rank 0 decodes; other ranks return ``None``.
    Raises :class:`lyra.errors.LyraError` subclasses for bad input and missing models (naming what to
    get), :class:`lyra.progress.Cancelled` when cancelled.
    """
    from lyra.device import resolve_device

    dynamic = frames.is_video
    require_models(teacher is None and request.teacher == "gen3c", decoder is None or tokenizer is None, dynamic)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    rank, world = rank_and_world()
    start_ranks(world, resolve_device(request.device))
    teacher_share = 8.0 * len(request.trajectories) / world
    depth_stage, teacher_stage, decode_stage = stages(progress, [1.0 + dynamic * 2.0, teacher_share, 1.0])

    def prepare():
        return prepare_input(frames, request, work_dir, estimator=estimator, intrinsics=intrinsics, progress=depth_stage)

    if rank == 0:
        images, depth, ks, poses = prepare()
    barrier(world)  # the other ranks read the input stage rank 0 wrote
    if rank != 0:
        images, depth, ks, poses = prepare()
    input_key = read_stage_key(work_dir / "input")
    if dynamic:
        if images.shape[0] < request.num_frames:
            raise InputDataError(f"num_frames: 4D needs a video of at least {request.num_frames} frames, "
                                 f"found {images.shape[0]}")
        images, depth, ks = images[: request.num_frames], depth[: request.num_frames], ks[: request.num_frames]
        poses = (poses if poses is not None else torch.eye(4).repeat(images.shape[0], 1, 1))[: request.num_frames]
    loaded = {}

    def get_teacher():
        if "teacher" not in loaded:
            loaded["teacher"] = teacher if teacher is not None else default_teacher(request)
        return loaded["teacher"]

    units = trajectory_units(request, work_dir / "sdg", input_key, teacher_identity(request, teacher))
    teach_trajectories(get_teacher, images, depth, ks, poses, request, units, teacher_stage, rank=rank, world=world)
    barrier(world)  # every trajectory is on disk
    if rank != 0:
        report(progress, 1.0, f"rank {rank}: trajectories done; rank 0 decodes")
        return None
    return decode_stage_run(units, request, work_dir, input_key, decoder, tokenizer, tokenizer_folder, dynamic,
                            frames.fps, decode_stage)


def decode_stage_run(units, request, work_dir, input_key, decoder, tokenizer, tokenizer_folder, dynamic, fps, progress):
    """Stage 3: the decoder over the SDG folders (reused when decoded before with the same key, decoder included)."""
    from lyra.pipeline.decode import decode_scene

    folder = work_dir / "scene"
    key = stage_key({"input": input_key, "sdg": [u.key for u in units], "times": request.times,
                     "prune": request.prune_ratio, "fps": fps,
                     "decoder": decoder_identity(request, dynamic, decoder, tokenizer)})
    target = folder / ("sequence" if dynamic else "scene.ply")
    if is_finished(folder, key):
        report(progress, 1.0, "decode: reused")
        return load(target)
    if decoder is None or tokenizer is None:
        decoder, tokenizer, tokenizer_folder = default_decoder(request, dynamic, decoder, tokenizer, tokenizer_folder)
    views = decode_order(TRAJECTORY_FOLDERS[u.trajectory] for u in units)
    result = decode_scene(decoder, tokenizer, work_dir / "sdg", views=views, target_frames=request.times,
                          name=SDG_NAME, vae_folder=tokenizer_folder, prune_ratio=request.prune_ratio, fps=fps,
                          progress=progress)
    with atomic_directory(folder) as tmp:
        save(result, tmp / target.name)
        mark_finished(tmp, key)
    return result

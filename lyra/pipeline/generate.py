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
pipeline calls per trajectory. Every stage folder is written atomically and
ends with ``stage.json`` holding a key of everything the stage depends on; a
folder whose key differs (other seed, steps, input, ...) is recomputed.

Video -> 4D (``frames.is_video``): per-frame depth (from a ViPE-style folder or
the depth network), each Lyra trajectory composed with each frame's pose
(frame ``i`` of a trajectory is input frame ``i`` seen from the preset's camera
``i`` relative to that frame's camera), a teacher with a video mode
(``generate_video``), then the dynamic decoder at the target frames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError, LyraError
from lyra.fileio import atomic_directory, atomic_write
from lyra.pipeline.depth import PNG_UNITS_PER_METRE, DepthEstimator
from lyra.pipeline.generate_models import default_decoder, default_teacher, memory_mode, require_models
from lyra.pipeline.inputs import Frames
from lyra.pipeline.preview import frame_depth, relative_poses
from lyra.pipeline.sdg import write_trajectory
from lyra.progress import Progress, report, stages, subrange
from lyra.render.camera import Camera
from lyra.render.trajectories import LYRA_TRAJECTORY_INDEX, lyra_trajectory
from lyra.scene import Gaussians, GaussianSequence, load, save

# Folder index of each trajectory: Lyra's six first (their official indices), then the two extra presets.
TRAJECTORY_FOLDERS = {name: str(i) for i, name in enumerate((*LYRA_TRAJECTORY_INDEX, "down", "counterclockwise"))}
CUSTOM = "custom"  # a keyframed camera path (the Render panel's JSON), folder "custom"
TRAJECTORY_FOLDERS[CUSTOM] = CUSTOM
SDG_NAME = "scene"
STAGE_FILE = "stage.json"


@dataclasses.dataclass
class GenerateSettings:
    """What a Lyra run depends on (the UI's options); defaults are Lyra's."""

    trajectories: Sequence[str] = LYRA_TRAJECTORY_INDEX
    movement: float = 1.0  # Lyra's distance factor (2 = more motion)
    steps: int = 35
    guidance: float = 1.0
    seed: int = 0
    target_times: Sequence[int] | None = None  # 4D: frame indices the dynamic decoder is queried at
    offload: str = "none"  # the teacher's memory mode
    device: str = "auto"
    num_frames: int = 121
    width: int = 1280
    height: int = 704
    prune_ratio: float | None = None  # None: the decoder checkpoint's (0.8 released)
    custom_path: str | None = None  # camera-path JSON for the "custom" trajectory

    def __post_init__(self) -> None:
        self.trajectories = list(self.trajectories)
        unknown = [t for t in self.trajectories if t not in TRAJECTORY_FOLDERS]
        if not self.trajectories or unknown:
            raise InputDataError(f"trajectories must be among {sorted(TRAJECTORY_FOLDERS)}, found {self.trajectories}")
        if self.num_frames < 9 or (self.num_frames - 1) % 8:
            raise InputDataError(f"num_frames must be 8k + 1 (9, 17, ..., 121), found {self.num_frames}")
        if CUSTOM in self.trajectories and not self.custom_path:
            raise InputDataError("the custom trajectory needs a camera-path JSON (custom_path)")
        if self.custom_path and not Path(self.custom_path).is_file():
            raise InputDataError(f"{self.custom_path}: camera path file not found")
        memory_mode(self)  # a bad memory mode is an input error now, not after the depth stage
        if self.width % 16 or self.height % 16:
            raise InputDataError(f"generation size must be a multiple of 16, found {self.width}x{self.height}")


# --------------------------------------------------------------------------- stage bookkeeping
def _key(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stage_done(folder: Path, key: str) -> bool:
    try:
        return json.loads((folder / STAGE_FILE).read_text())["key"] == key
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _mark_done(folder: Path, key: str, **info) -> None:
    with atomic_write(folder / STAGE_FILE, "w") as handle:
        json.dump({"key": key, **info}, handle)


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


def prepare_input(
    frames: Frames,
    settings: GenerateSettings,
    work_dir: Path,
    *,
    depth_file: str | os.PathLike | None,
    estimator: DepthEstimator | None,
    intrinsics: Sequence[float] | None,
    png_units_per_metre: float,
    progress: Progress | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """Stage 1 -> ``(images [F, H, W, 3] uint8, depth [F, H, W], intrinsics [F, 4], c2w [F, 4, 4] or None)``."""
    folder = work_dir / "input"
    digest = hashlib.sha256(frames.frames.numpy().tobytes()).hexdigest()[:16]
    depth_digest = hashlib.sha256(Path(depth_file).read_bytes()).hexdigest()[:16] if depth_file else None
    key = _key({"frames": digest, "depth_file": depth_digest, "intrinsics": intrinsics, "size": [settings.width, settings.height],
                "estimator": getattr(estimator, "kind", None), "units": png_units_per_metre})
    if _stage_done(folder, key):
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
                            png_units_per_metre=png_units_per_metre, progress=step)
        image, depth, k = fit_to_size(frames.frames[i], found.depth, found.intrinsics, settings.width, settings.height)
        images.append(image), depths.append(depth), ks.append(k)
        report(step, 1.0, "ready")
    arrays = {"images": torch.stack(images).numpy(), "depth": torch.stack(depths).numpy(), "intrinsics": torch.stack(ks).numpy()}
    if frames.c2w is not None:
        arrays["c2w"] = relative_poses(frames.c2w).float().numpy()
    with atomic_directory(folder) as tmp:
        np.savez(tmp / "input.npz", **arrays)
        _mark_done(tmp, key)
    c2w = torch.from_numpy(arrays["c2w"]) if "c2w" in arrays else None
    return torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["depth"]), torch.from_numpy(arrays["intrinsics"]), c2w


# --------------------------------------------------------------------------- stage 2: trajectories
def trajectory_cameras(
    name: str,
    settings: GenerateSettings,
    intrinsics: Tensor,  # [4] or [F, 4]
    *,
    poses: Tensor | None = None,  # [F, 4, 4] input video poses (relative to frame 0) for 4D
    center_depth: float = 1.0,
) -> Camera:  # [F]
    """Lyra preset ``name`` (its distance drawn from the preset's range with the run's seed, times the movement).

    ``custom``: the keyframed path of ``settings.custom_path``, made relative to its first camera (the
    input view) and scaled by the movement factor, with the input's intrinsics (Lyra keeps them fixed).
    With ``poses``, camera ``i`` is the preset's camera ``i`` placed relative to input frame ``i``'s camera.
    """
    if name == CUSTOM:
        from lyra.render.paths import CameraPath

        sampled, _ = CameraPath.load(settings.custom_path).sample(settings.num_frames, settings.width, settings.height)
        c2w = torch.linalg.inv(sampled.c2w[0].double()) @ sampled.c2w.double()
        c2w[:, :3, 3] *= settings.movement
        k = torch.as_tensor(intrinsics, dtype=torch.float32).expand(settings.num_frames, 4).clone()
        camera = Camera(c2w.float(), k, settings.width, settings.height)
    else:
        index = list(TRAJECTORY_FOLDERS).index(name)
        rng = np.random.default_rng([settings.seed, index])
        camera = lyra_trajectory(
            name, settings.num_frames, distance_factor=settings.movement, center_depth=center_depth, rng=rng,
            width=settings.width, height=settings.height, intrinsics=intrinsics,
        )
    if poses is None:
        return camera
    if poses.shape[0] != settings.num_frames:
        raise InputDataError(f"4D needs {settings.num_frames} input frames, found {poses.shape[0]}")
    return Camera(poses.to(camera.c2w) @ camera.c2w, camera.intrinsics, camera.width, camera.height)


def run_teacher(
    get_teacher,
    images: Tensor,
    depth: Tensor,
    intrinsics: Tensor,
    poses: Tensor | None,
    settings: GenerateSettings,
    work_dir: Path,
    input_key: str,
    progress: Progress | None,
) -> list[str]:
    """Stage 2: one SDG trajectory folder per trajectory, skipping those already on disk; returns the folder names.

    ``get_teacher()`` is called only when a trajectory is missing (loading GEN3C takes minutes).
    """
    sdg = work_dir / "sdg"
    folders = []
    dynamic = images.shape[0] > 1
    center = float(depth[0][depth[0] > 0].median()) if dynamic and (depth[0] > 0).any() else 1.0
    for n, name in enumerate(settings.trajectories):
        step = subrange(progress, n / len(settings.trajectories), (n + 1) / len(settings.trajectories),
                        f"trajectory {n + 1}/{len(settings.trajectories)} ({name}): ")
        folder_name = TRAJECTORY_FOLDERS[name]
        folders.append(folder_name)
        custom = hashlib.sha256(Path(settings.custom_path).read_bytes()).hexdigest() if name == CUSTOM else None
        key = _key({"input": input_key, "trajectory": name, "seed": settings.seed, "steps": settings.steps,
                    "guidance": settings.guidance, "movement": settings.movement, "frames": settings.num_frames,
                    "path": custom})
        if _stage_done(sdg / folder_name, key):
            report(step, 1.0, "reused")
            continue
        camera = trajectory_cameras(name, settings, intrinsics[0] if not dynamic else intrinsics, poses=poses,
                                    center_depth=center)
        teacher = get_teacher()
        if dynamic:
            if not hasattr(teacher, "generate_video"):
                raise LyraError(f"the teacher {type(teacher).__name__} has no video mode (generate_video) for 4D")
            output = teacher.generate_video(images, [camera], depth=depth, intrinsics=intrinsics, c2w=poses,
                                            names=[name], progress=step)
        else:
            output = teacher.generate(images[0], [camera], depth=depth[0], intrinsics=intrinsics[0], names=[name],
                                      progress=step)
        result = output.trajectories[0]
        with atomic_directory(sdg / folder_name) as tmp:
            write_trajectory(tmp, latents=result.latents, c2w=result.camera.c2w, intrinsics=result.camera.intrinsics,
                             frames=result.frames, depth=result.depth, name=SDG_NAME)
            _mark_done(tmp, key, trajectory=name)
    return folders


# --------------------------------------------------------------------------- the whole run
def generate_scene(
    frames: Frames,
    settings: GenerateSettings,
    *,
    work_dir: str | os.PathLike,
    teacher=None,
    decoder=None,
    tokenizer=None,
    tokenizer_folder: str | os.PathLike | None = None,
    depth_file: str | os.PathLike | None = None,
    estimator: DepthEstimator | None = None,
    intrinsics: Sequence[float] | None = None,
    png_units_per_metre: float = PNG_UNITS_PER_METRE,
    progress: Progress | None = None,
) -> Gaussians | GaussianSequence:
    """Run (or resume) the pipeline in ``work_dir``; models not given are loaded from the model registry.

    Raises :class:`lyra.errors.LyraError` subclasses for bad input and missing
    models (naming what to get), :class:`lyra.progress.Cancelled` when cancelled.
    """
    dynamic = frames.is_video
    require_models(teacher is None, decoder is None or tokenizer is None, dynamic)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    teacher_share = 8.0 * len(settings.trajectories)
    depth_stage, teacher_stage, decode_stage = stages(progress, [1.0 + dynamic * 2.0, teacher_share, 1.0])
    images, depth, ks, poses = prepare_input(
        frames, settings, work_dir, depth_file=depth_file, estimator=estimator, intrinsics=intrinsics,
        png_units_per_metre=png_units_per_metre, progress=depth_stage,
    )
    input_key = json.loads((work_dir / "input" / STAGE_FILE).read_text())["key"]
    if dynamic:
        if images.shape[0] < settings.num_frames:
            raise InputDataError(f"4D needs a video of at least {settings.num_frames} frames, found {images.shape[0]}")
        images, depth, ks = images[: settings.num_frames], depth[: settings.num_frames], ks[: settings.num_frames]
        poses = (poses if poses is not None else torch.eye(4).repeat(images.shape[0], 1, 1))[: settings.num_frames]
    loaded = {}

    def get_teacher():
        if "teacher" not in loaded:
            loaded["teacher"] = teacher if teacher is not None else default_teacher(settings)
        return loaded["teacher"]

    folders = run_teacher(get_teacher, images, depth, ks, poses, settings, work_dir, input_key, teacher_stage)
    return decode_stage_run(folders, settings, work_dir, input_key, decoder, tokenizer, tokenizer_folder,
                            dynamic, decode_stage)


def decode_stage_run(folders, settings, work_dir, input_key, decoder, tokenizer, tokenizer_folder, dynamic, progress):
    """Stage 3: the decoder over the SDG folders (reused when already decoded with the same key)."""
    from lyra.pipeline.decode import decode_scene

    folder = work_dir / "scene"
    key = _key({"input": input_key, "sdg": [_stage_key(work_dir / "sdg" / f) for f in folders],
                "times": settings.target_times, "prune": settings.prune_ratio})
    target = folder / ("sequence" if dynamic else "scene.ply")
    if _stage_done(folder, key):
        report(progress, 1.0, "decode: reused")
        return load(target)
    if decoder is None or tokenizer is None:
        decoder, tokenizer, tokenizer_folder = default_decoder(settings, dynamic, decoder, tokenizer, tokenizer_folder)
    # Lyra's decoder reads the views in its demo order (5, 0, 1, 2, 3, 4) when they are there.
    order = [f for f in ("5", "0", "1", "2", "3", "4") if f in folders] + [f for f in folders if f not in "501234"]
    result = decode_scene(decoder, tokenizer, work_dir / "sdg", views=order, target_frames=settings.target_times,
                          name=SDG_NAME, vae_folder=tokenizer_folder, prune_ratio=settings.prune_ratio,
                          progress=progress)
    with atomic_directory(folder) as tmp:
        save(result, tmp / target.name)
        _mark_done(tmp, key)
    return result


def _stage_key(folder: Path) -> str | None:
    try:
        return json.loads((folder / STAGE_FILE).read_text())["key"]
    except (OSError, ValueError, KeyError):
        return None

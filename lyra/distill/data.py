"""Training data: SDG folders in the official layout, sampled the way Lyra's self-distillation does.

A data root holds scenes; a scene is a folder of trajectory folders (``0`` .. ``5``), each
``rgb/NAME.mp4``, ``latent/NAME.pkl``, ``pose/NAME.npz``, ``intrinsics/NAME.npz``, ``depth/NAME.zip``
(LYRA_FACTS.md "Data on disk"). A scene may also hold ``geometry.npz`` (``points [P, 3]``, world
frame: the true surface of a synthetic scene, for Chamfer evaluation).

One sample = one scene, ``V`` input trajectories (their first ``T`` latent frames, i.e.
``8 (T - 1) + 1`` video frames) and ``N`` target frames taken from *other* trajectories at any
time index (the inputs' own frames are used only when a scene has no other trajectory). Dynamic
stages pick one target time for all targets. Poses come out relative to the first frame of the
first input trajectory. Targets are resized to the stage's resolution; latents stay at their
stored resolution (the Gaussians live on the latent grid whatever the render size).

Memory stays bounded: decoded trajectories (frames already resized) live in an LRU cache of
``cache_size`` entries; nothing else is kept.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError
from lyra.model.tokenizer import video_frames
from lyra.pipeline.sdg import read_depth_zip, read_rgb_video, read_trajectory
from lyra.render.rays import scale_intrinsics

GEOMETRY_FILE = "geometry.npz"


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """Which scene, which input trajectories, which target (trajectory, frame) pairs."""

    scene: int
    inputs: tuple[int, ...]  # trajectory positions in the scene, first = pose reference
    targets: tuple[tuple[int, int], ...]  # (trajectory position, frame index)
    target_time: int | None = None  # dynamic stages: the frame index every target shows


@dataclasses.dataclass
class Sample:
    latents: Tensor  # [V*T, 16, h, w] normalised (model-space) latents, view-major
    input_c2w: Tensor  # [V*F, 4, 4] relative to the first input camera
    input_intrinsics: Tensor  # [V*F, 4] pixels of the stored video (8h x 8w)
    target_rgb: Tensor  # [N, H, W, 3] float in [0, 1] at the stage resolution
    target_depth: Tensor  # [N, H, W] z-depth (0 = unknown)
    target_c2w: Tensor  # [N, 4, 4] relative to the first input camera
    target_intrinsics: Tensor  # [N, 4] pixels at the stage resolution
    reference_c2w: Tensor  # [4, 4] world pose of the first input camera
    num_views: int
    image_size: tuple[int, int]  # (H, W) of the stored video
    input_frames: Tensor  # [F] frame indices of the inputs (for time conditioning)
    target_time: int | None
    key: tuple  # identifies scene + inputs (for caching conditioning)


def _is_trajectory(folder: Path) -> bool:
    return (folder / "latent").is_dir()


def find_scenes(root: str | os.PathLike) -> list[Path]:
    """Scene folders under ``root`` (``root`` itself if it is one), sorted; raises InputDataError if none."""
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"{root}: data folder not found")

    def is_scene(folder: Path) -> bool:
        return any(_is_trajectory(c) for c in folder.iterdir() if c.is_dir())

    if is_scene(root):
        return [root]
    scenes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and is_scene(p))
    if not scenes:
        raise InputDataError(f"{root}: expected scene folders holding trajectory folders with latent/, found none")
    return scenes


def _sorted_trajectories(scene: Path) -> list[Path]:
    folders = [c for c in scene.iterdir() if c.is_dir() and _is_trajectory(c)]
    return sorted(folders, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


class SDGDataset:
    """Scenes of a data root, read lazily with a bounded trajectory cache."""

    def __init__(self, root: str | os.PathLike, cache_size: int = 64, scenes: list[Path] | None = None):
        self.root = Path(root)
        self.scenes = find_scenes(root) if scenes is None else list(scenes)
        if not self.scenes:
            raise InputDataError(f"{root}: no scenes to use")
        self.trajectories = [_sorted_trajectories(s) for s in self.scenes]
        self.cache_size = cache_size
        self._cache: collections.OrderedDict = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self.scenes)

    def num_trajectories(self, scene: int) -> int:
        return len(self.trajectories[scene])

    def geometry(self, scene: int) -> Tensor | None:
        """True surface points ``[P, 3]`` (world) of a synthetic scene, or None."""
        path = self.scenes[scene] / GEOMETRY_FILE
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as npz:
            return torch.from_numpy(np.asarray(npz["points"], dtype=np.float32))

    def stored_shape(self, scene: int = 0) -> tuple[int, tuple[int, int]]:
        """``(latent frames, (H, W) of the video)`` of a scene's first trajectory."""
        entry = self._load(scene, 0, (8, 8))
        return entry["latents"].shape[1], entry["full_size"]

    # ------------------------------------------------------------ reading
    def _load(self, scene: int, position: int, size: tuple[int, int]) -> dict:
        key = (scene, position, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        folder = self.trajectories[scene][position]
        traj = read_trajectory(folder)
        rgb = read_rgb_video(folder / "rgb" / f"{traj.name}.mp4")  # [F, H0, W0, 3] uint8
        if rgb.shape[0] < traj.num_frames:
            raise InputDataError(f"{folder}: rgb has {rgb.shape[0]} frames, latents need {traj.num_frames}")
        depth_file = folder / "depth" / f"{traj.name}.zip"
        depth = read_depth_zip(depth_file) if depth_file.is_file() else torch.zeros(rgb.shape[:3])
        full_size = tuple(rgb.shape[1:3])
        entry = {
            "latents": traj.latents,  # [16, T, h, w]
            "c2w": traj.c2w,
            "intrinsics": traj.intrinsics,
            "full_size": full_size,
            "rgb": _resize_rgb(rgb[: traj.num_frames], size),  # [F, H, W, 3] float
            "depth": _resize_depth(depth[: traj.num_frames], size),  # [F, H, W]
        }
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def sample(self, spec: SampleSpec, resolution: tuple[int, int], latent_frames: int) -> Sample:
        """Assemble one sample at ``resolution`` (H, W) using the first ``latent_frames`` latent frames."""
        inputs = [self._load(spec.scene, p, resolution) for p in spec.inputs]
        frames_t = min(latent_frames, inputs[0]["latents"].shape[1])
        num_frames = video_frames(frames_t)
        reference = inputs[0]["c2w"][0]
        to_ref = torch.linalg.inv(reference)
        latents = torch.cat([e["latents"][:, :frames_t].permute(1, 0, 2, 3) for e in inputs])  # [V*T, 16, h, w]
        input_c2w = torch.cat([to_ref @ e["c2w"][:num_frames] for e in inputs])
        input_k = torch.cat([e["intrinsics"][:num_frames] for e in inputs])
        rgb, depth, c2w, k = [], [], [], []
        for position, frame in spec.targets:
            e = self._load(spec.scene, position, resolution)
            rgb.append(e["rgb"][frame])
            depth.append(e["depth"][frame])
            c2w.append(to_ref @ e["c2w"][frame])
            full_h, full_w = e["full_size"]
            k.append(scale_intrinsics(e["intrinsics"][frame], resolution[1] / full_w, resolution[0] / full_h))
        return Sample(
            latents=latents,
            input_c2w=input_c2w,
            input_intrinsics=input_k,
            target_rgb=torch.stack(rgb),
            target_depth=torch.stack(depth),
            target_c2w=torch.stack(c2w),
            target_intrinsics=torch.stack(k),
            reference_c2w=reference,
            num_views=len(spec.inputs),
            image_size=inputs[0]["full_size"],
            input_frames=torch.arange(num_frames),
            target_time=spec.target_time,
            key=(str(self.scenes[spec.scene]), spec.inputs, frames_t),
        )


def _resize_rgb(frames: Tensor, size: tuple[int, int]) -> Tensor:  # [F, H0, W0, 3] uint8 -> [F, H, W, 3] float
    images = frames.permute(0, 3, 1, 2).float() / 255.0
    if tuple(images.shape[-2:]) != tuple(size):
        images = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
    return images.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def _resize_depth(depth: Tensor, size: tuple[int, int]) -> Tensor:  # [F, H0, W0] -> [F, H, W]
    if tuple(depth.shape[-2:]) == tuple(size):
        return depth.float()
    # Nearest keeps 0 (= unknown) pixels unknown instead of blending them into neighbours.
    return F.interpolate(depth[:, None].float(), size=size, mode="nearest-exact")[:, 0]


# ---------------------------------------------------------------- sampling
def draw_spec(
    rng: np.random.Generator,
    dataset: SDGDataset,
    num_views: int,
    num_targets: int,
    num_frames: int,
    dynamic: bool = False,
) -> SampleSpec:
    """A random training sample: inputs from the scene's trajectories, targets from the others."""
    scene = int(rng.integers(len(dataset)))
    count = dataset.num_trajectories(scene)
    if count < num_views:
        raise InputDataError(f"{dataset.scenes[scene]}: {count} trajectories, the stage needs {num_views} input views")
    inputs = tuple(int(i) for i in rng.permutation(count)[:num_views])
    pool = [p for p in range(count) if p not in inputs] or list(inputs)
    if dynamic:
        time = int(rng.integers(num_frames))
        targets = tuple((int(rng.choice(pool)), time) for _ in range(num_targets))
        return SampleSpec(scene, inputs, targets, time)
    targets = tuple((int(rng.choice(pool)), int(rng.integers(num_frames))) for _ in range(num_targets))
    return SampleSpec(scene, inputs, targets)


def eval_specs(dataset: SDGDataset, num_views: int, num_targets: int, num_frames: int) -> list[SampleSpec]:
    """Deterministic held-out samples: the first ``num_views`` trajectories in, evenly spaced frames of the rest out."""
    specs = []
    for scene in range(len(dataset)):
        count = dataset.num_trajectories(scene)
        views = min(num_views, count)
        inputs = tuple(range(views))
        pool = list(range(views, count)) or list(inputs)
        targets = tuple(
            (pool[i % len(pool)], int(round(f)))
            for i, f in enumerate(np.linspace(0, num_frames - 1, num_targets))
        )
        specs.append(SampleSpec(scene, inputs, targets))
    return specs

"""The synthetic teacher: procedural scenes with known geometry, rendered along the Lyra trajectories.

A scene is a few textured primitives (spheres, boxes, tori, cylinders, cones from
:mod:`lyra.scene.procedural`) in front of a textured back wall and floor, all built as
Gaussians. It is rendered with our renderer along the six Lyra trajectories
(:data:`lyra.render.LYRA_TRAJECTORY_INDEX`, first camera at the origin looking at
``(0, 0, 1)``, OpenCV frame, -y up) and the RGB videos are encoded with the Cosmos
tokenizer (the real one when given, else a tiny random ``AutoencoderKLCosmos``,
see :func:`tiny_random_tokenizer`). What it returns is what a video teacher
returns (frames, latents, cameras, depth) plus the true surface points for
Chamfer evaluation. The RGB frames are the renders themselves, so the student
learns from exact targets with exact depth. :class:`SyntheticTeacher` follows the teacher
protocol (:class:`~lyra.teacher.base.Teacher`): ``generate(image, trajectories, ...)`` renders its
known scene along any cameras; the image is not used (the scene is the one it knows).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.model.tokenizer import encode_video, latent_statistics, normalize_latents, video_frames
from lyra.progress import Progress, report
from lyra.render import LYRA_TRAJECTORY_INDEX, Camera, lyra_trajectory, render
from lyra.scene import procedural as primitives
from lyra.scene.gaussians import Gaussians
from lyra.teacher.base import TeacherOutput, TrajectoryOutput


@dataclasses.dataclass
class SyntheticScene:
    trajectories: list[TrajectoryOutput]  # in the order asked for
    points: Tensor  # [P, 3] true surface samples in world coordinates


VERSION = 2  # bump when scenes, renders or the tiny tokenizer change (keys cached data sets)


def tiny_random_tokenizer(seed: int = 0, channels: int = 16):
    """A small random-weight ``AutoencoderKLCosmos`` (CV8x8x8 shapes: 16 channels, 8x time and space).

    Plain random weights make a useless tokenizer: a stack of random residual blocks and
    attention with GroupNorms scrambles colour, and the output has a std of ~0.02 around
    channel offsets, which a student cannot learn from. So, like a trained tokenizer (and as
    residual-network inits often do), the encoder's residual and attention branches start at
    zero, its downsamplers only average, its input and output projections mix channels but not
    pixels, its input projection reads only the wavelet low-pass (local mean colour), its output
    SiLU works in its near-linear range, and its output
    projection is standardised (per channel mean 0, std 1) on two calibration
    scenes. Latent statistics are mean 0 / std 1, so stored latents are ``0.5 * raw``.
    Used by tests and the ``tiny-cpu`` preset when no real tokenizer is present.
    """
    from diffusers import AutoencoderKLCosmos

    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        vae = AutoencoderKLCosmos(
            encoder_block_out_channels=(channels,) * 4,
            decode_block_out_channels=(channels,) * 4,
            attention_resolutions=(),
            num_layers=1,
            resolution=64,
            latents_mean=[0.0] * 256,
            latents_std=[1.0] * 256,
        ).eval()
        with torch.no_grad():
            for module in vae.encoder.modules():
                name = type(module).__name__
                if name == "CosmosResnetBlock3d":
                    for p in module.conv2.parameters():
                        p.zero_()
                elif name == "CosmosCausalAttention":
                    for p in module.to_out[0].parameters():
                        p.zero_()
                elif name == "CosmosDownsample3d":  # pure average pooling: no random spatial mixing
                    for conv in (module.conv1, module.conv2):
                        for p in conv.parameters():
                            p.zero_()
            for conv in (vae.encoder.conv_in.conv_s, vae.encoder.conv_out.conv_s):  # centre taps only
                centre = conv.weight[..., 1:2, 1:2].clone()
                conv.weight.zero_()
                conv.weight[..., 1:2, 1:2] = centre
            # Read only the wavelet low-pass channels (the first 3 of the Haar patcher's output, the
            # local mean colour): the rest (edges) would otherwise drown the colour in random mixing.
            vae.encoder.conv_in.conv_s.weight[:, 3:] = 0
            # Keep the one SiLU (after the output GroupNorm) in its near-linear range.
            vae.encoder.norm_out.norm.weight.fill_(0.5)
            vae.encoder.norm_out.norm.bias.fill_(3.0)
            videos = []
            for calibration_seed in (-1, -2):  # scenes outside any data set's seeds
                _, rgb, _ = render_trajectory(random_scene(calibration_seed), "left", 9, 96, 64, np.random.default_rng(0))
                videos.append(rgb.permute(3, 0, 1, 2) * 2 - 1)  # [3, F, H, W] in [-1, 1]
            raw = encode_video(vae, torch.stack(videos))  # [2, 16, 2, 8, 12]
            mean = raw.mean(dim=(0, 2, 3, 4))
            std = raw.std(dim=(0, 2, 3, 4)).clamp_min(1e-6)
            last = vae.quant_conv  # the final linear op: y = W x + b -> (y - mean) / std
            last.weight.div_(std.view(-1, *([1] * (last.weight.dim() - 1))))
            last.bias.sub_(mean).div_(std)
    finally:
        torch.random.set_rng_state(state)
    return vae.requires_grad_(False)


# ------------------------------------------------------------------ scenes
def _texture(gen: torch.Generator) -> primitives.ColorFn:
    """A random two-colour checker or stripe pattern (low frequencies, so an 8x8-pixel Gaussian grid can learn it)."""
    a, b = torch.rand(3, generator=gen), torch.rand(3, generator=gen)
    freq = 1.5 + 3.5 * float(torch.rand((), generator=gen))
    kind = int(torch.randint(0, 3, (), generator=gen))
    direction = torch.nn.functional.normalize(torch.randn(3, generator=gen), dim=0)

    def color(p: Tensor) -> Tensor:
        if kind == 0:  # checker
            t = (torch.floor(p * freq).sum(-1) % 2)[:, None]
        elif kind == 1:  # stripes
            t = (torch.sin(freq * math.pi * (p @ direction)) > 0).float()[:, None]
        else:  # smooth gradient
            t = (0.5 + 0.5 * torch.sin(freq * (p @ direction)))[:, None]
        return a * (1 - t) + b * t

    return color


def _flip_to_opencv(g: Gaussians) -> Gaussians:
    """Model frame (y up, z towards the viewer) -> OpenCV world (y down, z forward): 180 deg about x."""
    flip = g.means.new_tensor([1.0, -1.0, -1.0])
    w, x, y, z = g.quats.unbind(-1)
    quats = torch.stack([-x, w, -z, y], dim=-1)  # (0, 1, 0, 0) * q
    return g.replace(means=g.means * flip, quats=quats)


def _plane(
    centre: Tensor,  # [3]
    axis_u: tuple[float, float, float],
    axis_v: tuple[float, float, float],
    half: tuple[float, float],
    counts: tuple[int, int],
    color: primitives.ColorFn,
) -> Gaussians:
    """A one-sided rectangle of ``counts`` flat splats spanning ``centre +- half`` along ``axis_u``/``axis_v``."""
    u_axis, v_axis = centre.new_tensor(axis_u), centre.new_tensor(axis_v)
    gu = ((torch.arange(counts[0]) + 0.5) / counts[0] * 2 - 1) * half[0]
    gv = ((torch.arange(counts[1]) + 0.5) / counts[1] * 2 - 1) * half[1]
    gu, gv = (t.reshape(-1) for t in torch.meshgrid(gu, gv, indexing="ij"))
    points = centre + gu[:, None] * u_axis + gv[:, None] * v_axis  # [N, 3]
    normals = torch.linalg.cross(u_axis, v_axis, dim=0).expand_as(points)
    return primitives.oriented_splats(
        points, u_axis.expand_as(points), normals, 2 * half[0] / counts[0], 2 * half[1] / counts[1], color(points)
    )


def random_scene(seed: int, splats_per_object: int = 300) -> Gaussians:
    """A seeded scene around ``(0, 0, 1)`` (OpenCV world): back wall, floor and 2-4 textured objects."""
    gen = torch.Generator().manual_seed(seed)
    # back wall at depth 2.2 and a floor below the objects (model frame: z = -depth, y up)
    parts = [
        _plane(torch.tensor([0.0, 0.2, -2.2]), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (2.0, 1.4), (32, 22), _texture(gen)),
        _plane(torch.tensor([0.0, -0.55, -1.6]), (1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (1.6, 0.65), (32, 16), _texture(gen)),
    ]
    for _ in range(int(torch.randint(2, 5, (), generator=gen))):
        x = float(torch.rand((), generator=gen)) * 0.9 - 0.45
        depth = 0.8 + 0.8 * float(torch.rand((), generator=gen))
        size = 0.1 + 0.12 * float(torch.rand((), generator=gen))
        y = -0.55 + size + 0.2 * float(torch.rand((), generator=gen))
        centre = torch.tensor([x, y, -depth])
        kind = int(torch.randint(0, 5, (), generator=gen))
        color = _texture(gen)
        if kind == 0:
            g = primitives.sphere(centre, size, splats_per_object, color)
        elif kind == 1:
            half = size * (0.6 + 0.6 * torch.rand(3, generator=gen))
            g = primitives.box(centre, half, float(torch.rand((), generator=gen)) * math.pi, splats_per_object // 6, color)
        elif kind == 2:
            g = primitives.torus(centre, size, 0.35 * size, splats_per_object, color)
        elif kind == 3:
            g = primitives.cylinder(centre - torch.tensor([0, size, 0]), 0.7 * size, 2 * size, splats_per_object, color)
        else:
            g = primitives.cone(centre - torch.tensor([0, size, 0]), 0.8 * size, 2 * size, splats_per_object, color)
        parts.append(primitives.lit(g))
    return _flip_to_opencv(Gaussians.cat(parts))


# ------------------------------------------------------------------ teacher
def render_trajectory(
    scene: Gaussians, name: str, num_frames: int, width: int, height: int, rng: np.random.Generator
) -> tuple[Camera, Tensor, Tensor]:
    """Cameras ``[F]``, RGB ``[F, H, W, 3]`` in [0, 1] and depth ``[F, H, W]`` along Lyra preset ``name``."""
    cams = lyra_trajectory(name, num_frames, width=width, height=height, rng=rng)
    rgb, depth = render_views(scene, cams)
    return cams, rgb, depth


def render_views(scene: Gaussians, cams: Camera) -> tuple[Tensor, Tensor]:
    """RGB ``[F, H, W, 3]`` in [0, 1] and depth ``[F, H, W]`` of ``scene`` from cameras ``[F]``, as Lyra renders (3DGUT)."""
    with torch.no_grad():
        out = render(scene, cams, background=(1.0, 1.0, 1.0), near=0.1, far=500.0, with_ut=True, with_eval3d=True)
    return out.rgb.clamp(0, 1).cpu(), out.depth.cpu()


def encode_frames(vae, frames: Tensor) -> Tensor:  # [F, H, W, 3] uint8 -> [16, T, H/8, W/8] normalised
    video = frames.permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0  # [1, 3, F, H, W] in [-1, 1]
    raw = encode_video(vae, video)[0].float().cpu()  # [16, T, h, w]
    return normalize_latents(raw, *latent_statistics(vae))


def synthetic_scene(
    seed: int,
    vae,
    *,
    latent_frames: int = 2,
    width: int = 96,
    height: int = 64,
    trajectories: tuple[str, ...] = LYRA_TRAJECTORY_INDEX,
    splats_per_object: int = 300,
    trajectory_seed: int = 0,
) -> SyntheticScene:
    """Render scene ``seed`` along ``trajectories`` (``8 (T - 1) + 1`` frames each) and encode it.

    Trajectory distances are drawn from the Lyra ranges with a generator seeded by
    ``(seed, trajectory_seed + i)``, so one trajectory can be made alone and match.
    """
    if width % 16 or height % 16:
        raise InputDataError(f"image size must be a multiple of 16 (latent grid of even size), got {width}x{height}")
    num_frames = video_frames(latent_frames)
    scene = random_scene(seed, splats_per_object)
    out = []
    for i, name in enumerate(trajectories):
        rng = np.random.default_rng([seed, trajectory_seed + i])
        cams, rgb, depth = render_trajectory(scene, name, num_frames, width, height, rng)
        frames = (rgb * 255).round().to(torch.uint8)
        out.append(TrajectoryOutput(name, frames, encode_frames(vae, frames), cams, depth.float()))
    return SyntheticScene(out, scene.means.detach().clone())


class SyntheticTeacher:
    """The synthetic teacher: procedural scene ``scene_seed`` (:func:`random_scene`) as a :class:`Teacher`.

    ``generate`` renders the scene along any camera trajectories and encodes the frames;
    ``trajectory(source, name)`` is make-data's unit: scene ``source`` along Lyra preset ``name``,
    with the distance drawn as :func:`synthetic_scene` draws it (so one trajectory made alone matches).
    """

    def __init__(self, vae, width: int, height: int, latent_frames: int, scene_seed: int = 0):
        if width % 16 or height % 16:
            raise InputDataError(f"image size must be a multiple of 16 (latent grid of even size), got {width}x{height}")
        self.vae, self.width, self.height, self.latent_frames = vae, width, height, latent_frames
        self.scene_seed = scene_seed

    def generate(self, image: Tensor | None, trajectories, *, depth: Tensor | None = None,
                 intrinsics: Tensor | None = None, names=None, progress: Progress | None = None) -> TeacherOutput:
        """Scene ``scene_seed`` rendered along ``trajectories`` (:class:`Camera` batches ``[F]``) and encoded.

        ``image``, ``depth`` and ``intrinsics`` are not used: this teacher draws the scene it knows.
        """
        scene = random_scene(self.scene_seed)
        names = list(names or [str(i) for i in range(len(trajectories))])
        outputs = []
        for k, (cams, name) in enumerate(zip(trajectories, names, strict=True)):
            report(progress, k / len(names), f"trajectory {name}")
            rgb, view_depth = render_views(scene, cams)
            frames = (rgb * 255).round().to(torch.uint8)
            outputs.append(TrajectoryOutput(name, frames, encode_frames(self.vae, frames), cams, view_depth.float()))
        report(progress, 1.0, "done")
        return TeacherOutput(outputs)

    def trajectory(self, source: str, name: str) -> TrajectoryOutput:
        index = LYRA_TRAJECTORY_INDEX.index(name)
        seed = int(source)
        rng = np.random.default_rng([seed, index])  # as synthetic_scene(seed, trajectory_seed=index) draws it
        cams = lyra_trajectory(name, video_frames(self.latent_frames), width=self.width, height=self.height, rng=rng)
        teacher = SyntheticTeacher(self.vae, self.width, self.height, self.latent_frames, scene_seed=seed)
        return teacher.generate(None, [cams], names=[name]).trajectories[0]

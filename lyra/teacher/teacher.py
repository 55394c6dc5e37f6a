"""``Gen3CTeacher``: one image + its depth + camera trajectories -> videos and model-space latents.

Per trajectory (GEN3C_SPEC.md sections 3-5, 7): build the 3D cache from the
image (the trajectory's first camera is the input view), render it into the
trajectory's cameras, encode the renders into the 64 pose channels, encode
the condition clip (the image at frame 0 of a 121-frame clip of zeros), sample
with the official loop, decode. Trajectories longer than 121 frames run in
121-frame chunks that share one frame: each later chunk starts from the
previous chunk's last decoded frame, whose depth (from ``depth_estimator``) is
aligned and added to the cache as the newest buffer.

Latents of a multi-chunk trajectory are chunk 0's 16 frames followed by frames
1.. of every later chunk (``T = 16 + 15 k``, so ``F = 8 (T - 1) + 1`` holds);
the official SDG script keeps only chunk 0's. Video mode (:meth:`Gen3CTeacher.generate_video`, for 4D) keeps
one cache per source frame: output frame ``t`` is warped from source frame ``t``. Frames are uint8, decoded as
``((1 + v).clamp(0, 2) / 2 * 255)`` truncated, as the official pipeline does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError
from lyra.model.tokenizer import decode_video, denormalize_latents, encode_video, latent_statistics, normalize_latents
from lyra.progress import Progress, report, stages, subrange
from lyra.render.camera import Camera
from lyra.teacher.base import TeacherOutput, TrajectoryOutput, image_to_unit_float
from lyra.teacher.cache3d import Cache3D
from lyra.teacher.gen3c import CHUNK_FRAMES, chunk_ranges, encode_warped_frames, sample
from lyra.teacher.memory import MemoryMode
from lyra.teacher.text import DEFAULT_NEGATIVE_PROMPT, T5TextEncoder, prompt_embeddings

# The transformer's 64 pose channels hold 2 cache buffers; video mode fills one (its frame's), the other is zeros.
VIDEO_POSE_BUFFERS = 2
DepthEstimator = Callable[[Tensor], Tensor]  # uint8 [H, W, 3] -> z-depth [H, W] (same camera as the frame)


@dataclasses.dataclass
class Gen3CSettings:
    """Sampling and cache settings; the defaults are the official SDG ones (704x1280, 35 steps, guidance 1)."""

    height: int = 704
    width: int = 1280
    num_steps: int = 35
    guidance: float = 1.0
    seed: int = 1
    fps: int = 24
    prompt: str = ""
    negative_prompt: str | None = DEFAULT_NEGATIVE_PROMPT
    filter_threshold: float = 0.05
    foreground_masking: bool = True


class ModelSpaceTokenizer:
    """The Cosmos tokenizer (:mod:`lyra.model.tokenizer`) in the diffusion model's space, one clip at a time."""

    def __init__(self, vae, memory: MemoryMode, folder=None):
        self.vae, self.memory = vae, memory
        self.mean, self.std = latent_statistics(vae, folder)

    def encode(self, video: Tensor) -> Tensor:  # [B, 3, F, H, W] in [-1, 1] -> [B, 16, T, h, w] model space
        with self.memory.on_device(self.vae):
            raw = torch.cat([encode_video(self.vae, clip[None]) for clip in video])  # one clip at a time
        return normalize_latents(raw.float(), self.mean.to(raw.device), self.std.to(raw.device))

    def decode(self, latents: Tensor) -> Tensor:  # model space [B, 16, T, h, w] -> [B, 3, F, H, W] in ~[-1, 1]
        raw = denormalize_latents(latents.float(), self.mean.to(latents.device), self.std.to(latents.device))
        with self.memory.on_device(self.vae):
            return torch.cat([decode_video(self.vae, clip[None]).float() for clip in raw])


def to_uint8_video(video: Tensor) -> Tensor:  # [3, F, H, W] in [-1, 1] -> uint8 [F, H, W, 3]
    """The official pixel conversion: ``((1 + v).clamp(0, 2) / 2 * 255)`` truncated to uint8."""
    return ((1.0 + video.float()).clamp(0, 2) / 2 * 255).to(torch.uint8).permute(1, 2, 3, 0).cpu()


class Gen3CTeacher:
    """GEN3C on diffusers behind the :class:`lyra.teacher.base.Teacher` protocol.

    ``transformer`` from :func:`lyra.teacher.gen3c.load_transformer`; ``vae`` an ``AutoencoderKLCosmos``
    (``lyra.model.tokenizer.load_cosmos_tokenizer``); ``text_encoder`` a :class:`T5TextEncoder` or None for
    zero embeddings; ``depth_estimator`` is needed only for trajectories longer than 121 frames.
    """

    def __init__(
        self,
        transformer,
        vae,
        text_encoder: T5TextEncoder | None = None,
        *,
        settings: Gen3CSettings | None = None,
        memory: MemoryMode | None = None,
        depth_estimator: DepthEstimator | None = None,
        vae_folder=None,
    ):
        self.settings = settings or Gen3CSettings()
        self.memory = memory or MemoryMode()
        self.transformer = self.memory.prepare_transformer(transformer)
        torch.nn.Module.to(vae, self.memory.storage_device)
        self.tokenizer = ModelSpaceTokenizer(vae, self.memory, vae_folder)
        self.text_encoder = text_encoder
        self.text_width = int(transformer.config.text_embed_dim)
        self.depth_estimator = depth_estimator
        self._embeddings: dict[tuple[str, str | None], tuple[Tensor, Tensor | None]] = {}

    # ------------------------------------------------------------------ text
    def embeddings(self, prompt: str, negative_prompt: str | None) -> tuple[Tensor, Tensor | None]:
        """Prompt embeddings, computed once per prompt pair; the T5 encoder is freed after its first use if asked."""
        key = (prompt, negative_prompt)
        if key not in self._embeddings:
            if self.text_encoder is None and self._embeddings and self.memory.free_text_encoder:
                raise InputDataError("the text encoder was freed after the first prompt; create a new teacher for a new prompt")
            with self.memory.on_device(None if self.text_encoder is None else self.text_encoder.encoder):
                self._embeddings[key] = prompt_embeddings(self.text_encoder, prompt, negative_prompt, width=self.text_width)
            if self.text_encoder is not None and self.memory.free_text_encoder:
                self.text_encoder = None
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
        return self._embeddings[key]

    # -------------------------------------------------------------- generate
    def generate(
        self,
        image: Tensor,  # [H0, W0, 3] uint8 or float in 0..1
        trajectories: Sequence[Camera],
        *,
        depth: Tensor | None = None,  # [H0, W0] z-depth of the image
        intrinsics: Tensor | None = None,  # [4] pixels at H0 x W0
        names: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> TeacherOutput:
        s = self.settings
        if depth is None or intrinsics is None:
            raise InputDataError("GEN3C needs the image's depth [H, W] and intrinsics [4]; estimate them first (lyra.pipeline)")
        if not trajectories:
            raise InputDataError("give at least one camera trajectory")
        names = [str(i) for i in range(len(trajectories))] if names is None else list(names)
        if len(names) != len(trajectories):
            raise InputDataError(f"{len(names)} names for {len(trajectories)} trajectories")
        unit = image_to_unit_float(image)
        src_h, src_w = unit.shape[:2]
        depth = torch.as_tensor(depth, dtype=torch.float32)
        if tuple(depth.shape) != (src_h, src_w):
            raise InputDataError(f"depth must be [{src_h}, {src_w}] like the image, found {list(depth.shape)}")
        k = torch.as_tensor(intrinsics, dtype=torch.float32).clone()
        k[[0, 2]] *= s.width / src_w
        k[[1, 3]] *= s.height / src_h
        cache_image, condition_image, cache_depth = self._prepare_input(unit, depth)
        positive, negative = self.embeddings(s.prompt, s.negative_prompt)
        outputs = []
        parts = stages(progress, [1.0] * len(trajectories))
        for index, (camera, name, part) in enumerate(zip(trajectories, names, parts, strict=True)):
            prefix = f"trajectory {index + 1}/{len(trajectories)} ({name}): "
            outputs.append(
                self._trajectory(
                    name, camera.resized(s.width, s.height), cache_image, condition_image, cache_depth, k,
                    positive, negative, subrange(part, 0.0, 1.0, prefix),
                )
            )
        return TeacherOutput(outputs, input_depth=cache_depth, input_intrinsics=k, prompt=s.prompt)

    def _prepare_input(self, unit: Tensor, depth: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Cache image (x/255*2-1, bilinear), condition frame (x/128-1, bicubic antialias), depth (bilinear).

        The two image normalisations differ on purpose: they are the official cache's and condition reader's.
        """
        s = self.settings
        size = (s.height, s.width)
        chw = unit.permute(2, 0, 1)[None]
        cache_image = F.interpolate(chw * 2 - 1, size=size, mode="bilinear", align_corners=False)[0]
        byte = chw * 255.0
        condition = F.interpolate(byte / 128.0 - 1.0, size=size, mode="bicubic", align_corners=False, antialias=True)[0]
        resized_depth = F.interpolate(depth[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        return cache_image, condition, resized_depth

    def _trajectory(self, name, camera, cache_image, condition_image, depth, k, positive, negative, progress):
        s = self.settings
        w2cs = torch.linalg.inv(camera.c2w.float())
        chunks = chunk_ranges(len(camera), CHUNK_FRAMES)
        if len(chunks) > 1 and self.depth_estimator is None:
            raise InputDataError(
                f"trajectory {name!r} has {len(camera)} frames (more than one 121-frame chunk): "
                "the teacher needs a depth_estimator to continue from generated frames"
            )
        cache = Cache3D(cache_image, depth, k, w2cs[0], filter_threshold=s.filter_threshold,
                        foreground_masking=s.foreground_masking)
        generator = torch.Generator().manual_seed(s.seed)
        frames, latents, depths = [], [], []
        for j, (start, end) in enumerate(chunks):
            part = subrange(progress, j / len(chunks), (j + 1) / len(chunks), f"chunk {j + 1}/{len(chunks)}: ")
            warp_p, encode_p, sample_p, decode_p = stages(part, [1, 1, 6, 1])
            images, masks, rendered = cache.render(w2cs[start:end], camera.intrinsics[start:end], progress=warp_p)
            latent, video = self._sample_chunk(images, masks, cache.buffer_max, condition_image, generator,
                                               positive, negative, (encode_p, sample_p, decode_p))
            first = 0 if j == 0 else 1
            frames.append(video[first:])
            latents.append(latent[0, :, first:])
            # Depth per frame: the cache's newest buffer where it has data, else the older one.
            chunk_depth = rendered[:, 0]
            for b in range(1, rendered.shape[1]):
                chunk_depth = torch.where(chunk_depth > 0, chunk_depth, rendered[:, b])
            depths.append(chunk_depth[first:])
            if j + 1 < len(chunks):
                condition_image = video[-1].permute(2, 0, 1).float() / 255.0 * 2 - 1
                new_depth = self.depth_estimator(video[-1])
                cache.update(condition_image, new_depth, w2cs[end - 1], camera.intrinsics[end - 1])
        return TrajectoryOutput(
            name=name,
            frames=torch.cat(frames),
            latents=torch.cat(latents, dim=1),
            camera=camera,
            depth=torch.cat(depths),
        )


    def _sample_chunk(self, images, masks, buffer_max, condition_image, generator, positive, negative, parts):
        """One 121-frame chunk: warped renders ``[F, N, 3, H, W]`` + condition frame -> (latent [1, 16, T, h, w], uint8 video)."""
        s = self.settings
        encode_p, sample_p, decode_p = parts
        pose = encode_warped_frames(self.tokenizer.encode, images[None], masks[None], buffer_max=buffer_max)
        clip = torch.zeros(1, 3, images.shape[0], s.height, s.width)
        clip[:, :, 0] = condition_image
        condition_latent = self.tokenizer.encode(clip)
        report(encode_p, 1.0, "encoded the condition")
        noise = torch.randn(condition_latent.shape, generator=generator)
        with self.memory.on_device(self.transformer if self.memory.offload == "model" else None):
            latent = sample(
                self.transformer, condition_latent=condition_latent, condition_pose=pose,
                text_embeds=positive, negative_text_embeds=negative, noise=noise, guidance=s.guidance,
                num_steps=s.num_steps, fps=s.fps, progress=sample_p,
            ).float().cpu()
        video = to_uint8_video(self.tokenizer.decode(latent)[0])  # [F, H, W, 3]
        report(decode_p, 1.0, "decoded the video")
        return latent, video

    # ------------------------------------------------------------ video mode
    def generate_video(
        self,
        frames: Tensor,  # [F, H0, W0, 3] uint8 or float in 0..1
        trajectories: Sequence[Camera],  # each [F]: camera t already composed with source frame t's pose
        *,
        depth: Tensor,  # [F, H0, W0] z-depth per frame
        intrinsics: Tensor,  # [F, 4] pixels at H0 x W0
        c2w: Tensor | None = None,  # [F, 4, 4] source poses (OpenCV camera-to-world); identity when None
        names: Sequence[str] | None = None,
        progress: Progress | None = None,
    ) -> TeacherOutput:
        """Video mode (Lyra's dynamic use of GEN3C): output frame ``t`` is conditioned on source frame ``t``.

        The 3D cache is per source frame: frame ``t``'s image and depth, unprojected with its intrinsics and
        pose, are warped into trajectory camera ``t`` only, giving one buffer per frame (the second of the 64
        pose channels is padded with zero latents, as the image mode does while its cache holds one buffer).
        The condition frame is source frame 0; trajectories longer than 121 frames run in the image mode's
        chunks, a later chunk conditioned on the previous chunk's last generated frame (its warps still come
        from the video, so no depth estimator is needed).
        """
        s = self.settings
        frames = torch.as_tensor(frames)
        count = frames.shape[0]
        depth = torch.as_tensor(depth, dtype=torch.float32)
        ks = torch.as_tensor(intrinsics, dtype=torch.float32).clone()
        c2w = torch.eye(4).repeat(count, 1, 1) if c2w is None else torch.as_tensor(c2w, dtype=torch.float32)
        if frames.dim() != 4 or depth.shape != frames.shape[:3] or ks.shape != (count, 4) or c2w.shape != (count, 4, 4):
            raise InputDataError(
                f"video mode needs frames [F, H, W, 3], depth [F, H, W], intrinsics [F, 4], c2w [F, 4, 4]; found "
                f"{list(frames.shape)}, {list(depth.shape)}, {list(ks.shape)}, {list(c2w.shape)}"
            )
        if not trajectories:
            raise InputDataError("give at least one camera trajectory")
        names = [str(i) for i in range(len(trajectories))] if names is None else list(names)
        if len(names) != len(trajectories) or any(len(camera) != count for camera in trajectories):
            raise InputDataError(f"video mode needs one name and {count} cameras (one per video frame) per trajectory")
        src_h, src_w = frames.shape[1:3]
        ks[:, [0, 2]] *= s.width / src_w
        ks[:, [1, 3]] *= s.height / src_h
        source_w2c = torch.linalg.inv(c2w.double()).float()
        _, condition_image, first_depth = self._prepare_input(image_to_unit_float(frames[0]), depth[0])
        positive, negative = self.embeddings(s.prompt, s.negative_prompt)
        outputs = []
        parts = stages(progress, [1.0] * len(trajectories))
        for index, (camera, name, part) in enumerate(zip(trajectories, names, parts, strict=True)):
            prefix = f"trajectory {index + 1}/{len(trajectories)} ({name}): "
            camera = camera.resized(s.width, s.height)
            warp = functools.partial(self._warp_source_frames, frames, depth, ks, source_w2c, camera)
            outputs.append(self._video_trajectory(name, camera, warp, condition_image, positive, negative,
                                                  subrange(part, 0.0, 1.0, prefix)))
        return TeacherOutput(outputs, input_depth=first_depth, input_intrinsics=ks[0], prompt=s.prompt)

    def _warp_source_frames(self, frames, depth, ks, source_w2c, camera, start, end, progress):
        """Source frame ``t`` warped into camera ``t`` for ``t`` in ``[start, end)``: images, masks, depth with N = 1."""
        s = self.settings
        target_w2c = torch.linalg.inv(camera.c2w[start:end].double()).float()
        rendered = []
        for i, t in enumerate(range(start, end)):
            cache_image, _, cache_depth = self._prepare_input(image_to_unit_float(frames[t]), depth[t])
            cache = Cache3D(cache_image, cache_depth, ks[t], source_w2c[t], filter_threshold=s.filter_threshold,
                            foreground_masking=s.foreground_masking)
            rendered.append(cache.render(target_w2c[i : i + 1], camera.intrinsics[t : t + 1]))
            report(progress, (i + 1) / (end - start), f"warping source frame {t + 1}/{end}")
        return tuple(torch.cat(parts) for parts in zip(*rendered, strict=True))

    def _video_trajectory(self, name, camera, warp, condition_image, positive, negative, progress):
        chunks = chunk_ranges(len(camera), CHUNK_FRAMES)
        generator = torch.Generator().manual_seed(self.settings.seed)
        frames, latents, depths = [], [], []
        for j, (start, end) in enumerate(chunks):
            part = subrange(progress, j / len(chunks), (j + 1) / len(chunks), f"chunk {j + 1}/{len(chunks)}: ")
            warp_p, encode_p, sample_p, decode_p = stages(part, [1, 1, 6, 1])
            images, masks, rendered = warp(start, end, warp_p)  # [F, 1, 3, H, W], [F, 1, 1, H, W], [F, 1, H, W]
            latent, video = self._sample_chunk(images, masks, VIDEO_POSE_BUFFERS, condition_image, generator,
                                               positive, negative, (encode_p, sample_p, decode_p))
            first = 0 if j == 0 else 1
            frames.append(video[first:])
            latents.append(latent[0, :, first:])
            depths.append(rendered[first:, 0])
            condition_image = video[-1].permute(2, 0, 1).float() / 255.0 * 2 - 1
        return TrajectoryOutput(name=name, frames=torch.cat(frames), latents=torch.cat(latents, dim=1), camera=camera,
                                depth=torch.cat(depths))


def load_gen3c_teacher(
    *,
    settings: Gen3CSettings | None = None,
    memory: MemoryMode | None = None,
    text_encoder: bool = True,
    depth_estimator: DepthEstimator | None = None,
    registry=None,
    progress: Progress | None = None,
) -> Gen3CTeacher:
    """A teacher from the model registry (``gen3c``, ``tokenizer``, and ``t5`` unless ``text_encoder=False``).

    Raises :class:`lyra.model.registry.ModelNotFoundError` naming what to download for a missing model.
    """
    from lyra.model.registry import load_registry, resolve_model
    from lyra.model.tokenizer import load_cosmos_tokenizer
    from lyra.teacher.gen3c import load_transformer

    memory = memory or MemoryMode()
    registry = load_registry() if registry is None else registry
    gen3c_path = resolve_model("gen3c", registry)
    vae_path = resolve_model("tokenizer", registry)
    t5_path = resolve_model("t5", registry) if text_encoder else None
    report(progress, 0.0, f"loading the GEN3C transformer from {gen3c_path}")
    transformer = load_transformer(gen3c_path, dtype=memory.dtype, device="cpu")
    report(progress, 0.6, f"loading the tokenizer from {vae_path}")
    vae = load_cosmos_tokenizer(vae_path, device="cpu", dtype=memory.dtype)
    encoder = None
    if t5_path is not None:
        report(progress, 0.7, f"loading the T5 text encoder from {t5_path}")
        encoder = T5TextEncoder.load(t5_path, dtype=memory.dtype, device=memory.storage_device)
    teacher = Gen3CTeacher(
        transformer, vae, encoder, settings=settings, memory=memory, depth_estimator=depth_estimator, vae_folder=vae_path
    )
    report(progress, 1.0, "teacher ready")
    return teacher

"""The GEN3C 3D cache: buffers of unprojected frames, forward-warped into target cameras (GEN3C_SPEC.md section 7).

A buffer is one frame lifted to world points: colours ``[3, H*W]`` in [-1, 1],
world points ``[H*W, 3]`` and a reliability mask ``[H*W]`` (depth > 0 and a
locally smooth depth, 5x5 window, ratio 0.05). The cache holds at most
``buffer_max = 2`` buffers, newest first; once full, a new frame overwrites
buffer 0, so the last buffer keeps the input image for the whole video.

:meth:`Cache3D.render` warps every buffer into every target camera by
bilinear splatting with the soft z-buffer (:mod:`lyra.teacher.warp`) and, with
foreground masking, hides pixels behind the boundary mesh of the input frame
(:mod:`lyra.teacher.occlusion`). Outputs follow the official layout without the
batch axis: images ``[F, N, 3, H, W]`` (holes -1), masks ``[F, N, 1, H, W]`` in
{0, 1}, depth ``[F, N, H, W]`` (0 in holes).

Cameras: OpenCV world-to-camera ``w2c [4, 4]`` and pixel intrinsics
``(fx, fy, cx, cy)``; pixel ``(x, y)`` at integer coordinates, as in the
official cache.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import InputDataError
from lyra.progress import Progress, report
from lyra.render.camera import intrinsics_matrix
from lyra.teacher.occlusion import occluded_pixels
from lyra.teacher.warp import Workspace, log_depth, project, reliable_depth_mask, splat_projected, unproject_depth

WARP_CHUNK = 2  # official render_cache chunk: the soft z-buffer maximum is shared by 2 flattened (frame, buffer) items
INITIAL_MAX_DEPTH = 100.0
UPDATE_MAX_DEPTH = 1e4


@dataclasses.dataclass
class Buffer:
    colors: Tensor  # [3, H*W] in [-1, 1], channel-major (the splat's layout)
    points: Tensor  # [H*W, 3] world
    mask: Tensor  # [H*W] float 0/1


class Cache3D:
    """The 3D cache of one generation; see the module docstring.

    ``image [3, H, W]`` in [-1, 1], ``depth [H, W]`` z-depth (NaN -> 100, clamped to [0, 100] as the
    official initial frame is), ``intrinsics [4]`` pixels, ``w2c [4, 4]`` (identity by default).
    """

    def __init__(
        self,
        image: Tensor,
        depth: Tensor,
        intrinsics: Tensor,
        w2c: Tensor | None = None,
        *,
        filter_threshold: float = 0.05,
        foreground_masking: bool = True,
        buffer_max: int = 2,
    ):
        if image.dim() != 3 or image.shape[0] != 3 or image.shape[1:] != depth.shape:
            raise InputDataError(f"cache needs image [3, H, W] and depth [H, W], found {list(image.shape)}, {list(depth.shape)}")
        self.height, self.width = depth.shape
        self.filter_threshold = filter_threshold
        self.buffer_max = buffer_max
        self.device = image.device
        depth = torch.nan_to_num(depth.float(), nan=INITIAL_MAX_DEPTH).clamp(0, INITIAL_MAX_DEPTH)
        w2c = torch.eye(4, device=self.device) if w2c is None else w2c.float()
        self.buffers: list[Buffer] = [self._buffer(image, depth, w2c, intrinsics)]
        # Foreground masking uses the initial frame's unreliable pixels (depth edges) for every buffer.
        self.boundary = ~reliable_depth_mask(depth) if foreground_masking else None
        self.input_depth = depth

    @property
    def num_buffers(self) -> int:
        return len(self.buffers)

    def _buffer(self, image: Tensor, depth: Tensor, w2c: Tensor, intrinsics: Tensor) -> Buffer:
        K = intrinsics_matrix(torch.as_tensor(intrinsics, dtype=torch.float32, device=self.device))
        points = unproject_depth(depth, w2c, K)
        if self.filter_threshold < 1.0:
            mask = reliable_depth_mask(depth, ratio=self.filter_threshold)
        else:
            mask = depth > 0
        return Buffer(image.float().reshape(3, -1).contiguous(), points.reshape(-1, 3), mask.reshape(-1).float())

    def update(self, image: Tensor, depth: Tensor, w2c: Tensor, intrinsics: Tensor, *, align: bool = True) -> None:
        """Add a generated frame (``image [3, H, W]`` in [-1, 1], its predicted ``depth [H, W]``, camera).

        The new depth (NaN -> 1e4, clamped to [0, 1e4]) is first aligned to the depth the cache renders at
        that camera (:func:`align_depth`), then inserted newest first (overwriting buffer 0 once full).
        """
        depth = torch.nan_to_num(depth.float(), nan=UPDATE_MAX_DEPTH).clamp(0, UPDATE_MAX_DEPTH)
        w2c = w2c.float()
        if align:
            _, masks, rendered = self.render(w2c[None], torch.as_tensor(intrinsics)[None].float())  # newest buffer, occlusion on
            depth = align_depth(depth, rendered[0, 0], masks[0, 0, 0] > 0, intrinsics_matrix(torch.as_tensor(intrinsics).float()))
        new = self._buffer(image, depth, w2c, intrinsics)
        if len(self.buffers) < self.buffer_max:
            self.buffers.insert(0, new)
        else:
            self.buffers[0] = new

    @torch.no_grad()
    def render(
        self,
        w2cs: Tensor,  # [F, 4, 4]
        intrinsics: Tensor,  # [F, 4]
        *,
        occlusion: bool = True,
        progress: Progress | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:  # images [F, N, 3, H, W], masks [F, N, 1, H, W], depth [F, N, H, W]
        """Warp every buffer into every target camera (frame-major, buffer-minor, as the official flattening)."""
        num_frames, n = w2cs.shape[0], self.num_buffers
        H, W = self.height, self.width
        Ks = intrinsics_matrix(intrinsics.float().to(self.device))
        w2cs = w2cs.float().to(self.device)
        images = torch.empty(num_frames, n, 3, H, W)
        masks = torch.empty(num_frames, n, 1, H, W)
        depths = torch.empty(num_frames, n, H, W)
        items = [(f, b) for f in range(num_frames) for b in range(n)]
        workspace = Workspace()
        for start in range(0, len(items), WARP_CHUNK):
            chunk = items[start : start + WARP_CHUNK]
            # The soft z-buffer normaliser is the max log1p(z) over every point of the chunk's items.
            projected = [project(self.buffers[b].points, w2cs[f], Ks[f]) for f, b in chunk]
            log_zs = [log_depth(z) for _, _, z in projected]
            log_max = torch.stack([lz.max() for lz in log_zs]).max()
            for (f, b), (u, v, z), log_z in zip(chunk, projected, log_zs, strict=True):
                buf = self.buffers[b]
                image, hit, depth = splat_projected(u, v, z, buf.colors, buf.mask, H, W, log_max, log_z, workspace)
                if occlusion and self.boundary is not None:
                    cam_points = (buf.points @ w2cs[f, :3, :3].T + w2cs[f, :3, 3]).view(H, W, 3)
                    hidden = occluded_pixels(cam_points, self.boundary, Ks[f], depth)
                    hit = hit & ~hidden
                    image = torch.where(hidden, torch.full_like(image, -1.0), image)
                    depth = torch.where(hidden, torch.zeros_like(depth), depth)
                images[f, b] = image.cpu()
                masks[f, b, 0] = hit.float().cpu()
                depths[f, b] = depth.cpu()
            report(progress, (start + len(chunk)) / len(items), f"warping the 3D cache: {min(start + len(chunk), len(items))}/{len(items)}")
        return images, masks, depths


def align_depth(
    depth: Tensor,  # [H, W] new (predicted) depth
    target: Tensor,  # [H, W] depth rendered from the cache at the same camera
    target_mask: Tensor,  # [H, W] bool, where the render has data
    K: Tensor,  # [3, 3]
    *,
    non_rigid: bool = True,
    iterations: int = 100,
    smoothness: float = 0.1,
) -> Tensor:  # [H, W]
    """Align ``depth`` to ``target``: affine fit in inverse depth on 10-90% quantile inliers, then a per-pixel scale.

    The scale map (init 1) is optimised with Adam (lr 1e-3, ``iterations`` steps) on the mean L1 distance of
    the unprojected points over ``target_mask`` plus ``smoothness`` x the mean |3x3 box-filtered scale - scale|.
    Returns ``depth`` unchanged when fewer than 16 pixels overlap.
    """
    source_inv = 1.0 / depth
    target_inv = 1.0 / target
    valid_src = depth > 0
    valid_tgt = target_mask & (target > 0)
    if valid_src.sum() < 16 or valid_tgt.sum() < 16:
        return depth
    q = torch.tensor([0.1, 0.9])
    s_lo, s_hi = torch.quantile(source_inv[valid_src].float().cpu(), q).tolist()
    t_lo, t_hi = torch.quantile(target_inv[valid_tgt].float().cpu(), q).tolist()
    inliers = (source_inv > s_lo) & (source_inv < s_hi) & (target_inv > t_lo) & (target_inv < t_hi)
    if inliers.sum() < 16:
        return depth
    design = torch.stack([source_inv[inliers], torch.ones_like(source_inv[inliers])], dim=1)
    scale, bias = torch.linalg.lstsq(design, target_inv[inliers][:, None]).solution[:, 0].tolist()
    aligned = 1.0 / (source_inv * scale + bias)
    if not non_rigid:
        return aligned
    identity = torch.eye(4)
    target_points = unproject_depth(torch.where(valid_tgt, target, torch.zeros_like(target)), identity, K)[valid_tgt]
    scale_map = torch.ones_like(aligned, requires_grad=True)
    optimizer = torch.optim.Adam([scale_map], lr=1e-3)
    box = torch.ones(1, 1, 3, 3) / 9.0
    with torch.enable_grad():
        for _ in range(iterations):
            points = unproject_depth(aligned * scale_map, identity, K)[valid_tgt]
            data = (points - target_points).abs().mean()
            smoothed = F.conv2d(scale_map[None, None], box, padding=1)[0, 0]
            loss = data + smoothness * (smoothed - scale_map).abs().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return (aligned * scale_map).detach()

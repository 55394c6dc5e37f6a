"""``render(gaussians, cameras)``: the one entry point for rasterizing Gaussians.

Conventions: OpenCV cameras (:class:`lyra.render.Camera`), activated Gaussians
(:class:`lyra.scene.Gaussians`), colour from SH via :func:`lyra.scene.sh.eval_sh`
with the view direction from the camera centre to the splat, colours clamped
at 0 (not at 1, as gsplat), premultiplied front-to-back compositing, then
``rgb = color + (1 - alpha) * background``. ``depth`` is the expected camera z
depth ``sum(w z) / sum(w)`` (0 where nothing was hit), as gsplat's "RGB+ED".

Backends:

* ``"gsplat"``: gsplat's CUDA kernels (needs CUDA); exposes its 3DGUT mode
  (``with_ut``, ``with_eval3d``, what Lyra trains with) and
  ``rasterize_mode="antialiased"``;
* ``"torch"``: :mod:`lyra.render.torch_rasterizer`, pure PyTorch, CPU or GPU,
  differentiable, same conventions, 3DGUT included: ``with_ut`` projects by
  the unscented transform (:mod:`lyra.render.ut_projection`) for culling and
  binning, ``with_eval3d`` evaluates each Gaussian in 3D along the pixel's ray
  (:mod:`lyra.render.eval3d`);
* ``"auto"``: gsplat when CUDA and its kernels are usable, else torch (with
  the same 3DGUT flags).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from lyra.errors import InputDataError
from lyra.render.camera import Camera
from lyra.render.eval3d import ray_coefficients
from lyra.render.projection import project_gaussians
from lyra.render.torch_rasterizer import DEFAULT_MAX_BLOCK, DEFAULT_TILE, rasterize
from lyra.render.ut_projection import project_gaussians_ut
from lyra.scene.gaussians import Gaussians
from lyra.scene.sh import eval_sh

BACKENDS = ("auto", "gsplat", "torch")
RASTERIZE_MODES = ("classic", "antialiased")


@dataclasses.dataclass
class RenderOutput:
    """Rendered images for a camera batch ``[...]`` (the cameras' leading dims)."""

    rgb: Tensor  # [..., H, W, 3] composited over the background
    alpha: Tensor  # [..., H, W] accumulated opacity
    depth: Tensor  # [..., H, W] expected z depth, 0 where alpha == 0
    backend: str  # "gsplat" or "torch": what actually ran


def render(
    gaussians: Gaussians,
    cameras: Camera,
    *,
    background: Tensor | Sequence[float] | float = (1.0, 1.0, 1.0),  # [3] or [..., 3]
    sh_degree: int | None = None,
    backend: str = "auto",
    near: float = 0.01,
    far: float = 1e10,
    rasterize_mode: str = "classic",
    with_ut: bool = False,
    with_eval3d: bool = False,
    tile_size: int = DEFAULT_TILE,
    max_block: int = DEFAULT_MAX_BLOCK,
) -> RenderOutput:
    """Render ``gaussians`` from ``cameras``; see the module docstring.

    ``background``: an RGB triple (default white, as Lyra) or a scalar.
    ``sh_degree``: use at most this many SH bands (default: all stored).
    ``tile_size`` / ``max_block`` tune the torch backend (memory bound per block).
    Raises InputDataError for an unknown backend/mode, or when ``backend="gsplat"``
    is asked for on a machine where gsplat's CUDA kernels are not usable.
    """
    if backend not in BACKENDS:
        raise InputDataError(f"backend must be one of {BACKENDS}, found {backend!r}")
    if rasterize_mode not in RASTERIZE_MODES:
        raise InputDataError(f"rasterize_mode must be one of {RASTERIZE_MODES}, found {rasterize_mode!r}")
    if not 0 <= near < far:
        raise InputDataError(f"expected 0 <= near < far, found near={near}, far={far}")
    chosen = backend
    if backend == "auto":
        chosen = "gsplat" if gsplat_available() else "torch"
    elif backend == "gsplat" and not gsplat_available():
        raise InputDataError("backend 'gsplat' needs CUDA and gsplat's compiled kernels; use backend='torch'")
    device = gaussians.device if chosen == "torch" else torch.device("cuda")
    dtype = gaussians.dtype if chosen == "torch" else torch.float32  # gsplat's kernels are float32
    cams = cameras.to(device, dtype)
    bg = torch.as_tensor(background, dtype=dtype, device=device)
    bg = bg.expand(*cams.batch_shape, 3) if bg.ndim <= 1 else bg
    if chosen == "gsplat":
        rgb, alpha, depth = _render_gsplat(
            gaussians.to(device, dtype), cams, bg, sh_degree, near, far, rasterize_mode, with_ut, with_eval3d
        )
    else:
        rgb, alpha, depth = _render_torch(
            gaussians, cams, bg, sh_degree, near, far, rasterize_mode, with_ut, with_eval3d, tile_size, max_block
        )
    return RenderOutput(rgb, alpha, depth, chosen)


def _render_torch(
    gaussians, cams, bg, sh_degree, near, far, rasterize_mode, with_ut, with_eval3d, tile_size, max_block
):
    flat = cams.flatten()
    bg_flat = bg.reshape(-1, 3)
    w2c = flat.w2c()
    g = gaussians
    rgbs, alphas, depths = [], [], []
    for i in range(flat.batch_shape[0]):
        project = project_gaussians_ut if with_ut else project_gaussians
        # With eval3d the projection only culls and bins (no gradients needed), as gsplat's 3DGUT.
        with torch.no_grad() if with_eval3d else contextlib.nullcontext():
            projected = project(
                g.means, g.quats, g.scales, g.opacities, w2c[i], flat.intrinsics[i], flat.width, flat.height,
                near=near, far=far, antialiased=rasterize_mode == "antialiased",
            )
        coefficients = None
        if with_eval3d:
            opacities = g.opacities
            if rasterize_mode == "antialiased":  # gsplat scales opacities by the (non-differentiable) compensation
                opacities = opacities * (projected.opacities / g.opacities.detach().clamp_min(1e-30))
            # Only splats that survived culling are ever gathered: their rows, zeros elsewhere.
            ids = torch.nonzero(projected.visible).squeeze(-1)  # [V]
            subset = ray_coefficients(
                g.means[ids], g.quats[ids], g.scales[ids], w2c[i], flat.intrinsics[i], projected.means2d[ids],
                opacities[ids],
            )  # [V, 12]
            coefficients = subset.new_zeros(len(g), subset.shape[-1]).index_copy(0, ids, subset)  # [N, 12]
        colors = eval_sh(g.sh, g.means - flat.c2w[i, :3, 3], sh_degree)  # [N, 3]
        depth_feature = projected.depths if not with_eval3d else (g.means @ w2c[i, 2, :3] + w2c[i, 2, 3])
        features = torch.cat([colors, depth_feature.unsqueeze(-1)], dim=-1)  # [N, 4]
        image, alpha = rasterize(
            projected, features, flat.width, flat.height, tile=tile_size, max_block=max_block,
            ray_coefficients=coefficients,
        )
        rgbs.append(image[..., :3] + (1.0 - alpha).unsqueeze(-1) * bg_flat[i])
        depths.append(image[..., 3] / alpha.clamp_min(1e-10))
        alphas.append(alpha)
    shape = (*cams.batch_shape, cams.height, cams.width)
    return (
        torch.stack(rgbs).reshape(*shape, 3),
        torch.stack(alphas).reshape(shape),
        torch.stack(depths).reshape(shape),
    )


def _render_gsplat(gaussians, cams, bg, sh_degree, near, far, rasterize_mode, with_ut, with_eval3d):
    from gsplat import rasterization

    flat = cams.flatten()
    degree = gaussians.sh_degree if sh_degree is None else min(sh_degree, gaussians.sh_degree)
    colors, alphas, _ = rasterization(
        gaussians.means, gaussians.quats, gaussians.scales, gaussians.opacities,
        gaussians.sh,  # [N, K, 3]
        flat.w2c(), flat.K(), flat.width, flat.height,
        near_plane=near, far_plane=far, sh_degree=degree,
        backgrounds=bg.reshape(-1, 3), render_mode="RGB+ED",
        rasterize_mode=rasterize_mode, with_ut=with_ut, with_eval3d=with_eval3d,
        packed=not (with_ut or with_eval3d),  # gsplat's 3DGUT path supports only unpacked mode
    )
    shape = (*cams.batch_shape, cams.height, cams.width)
    alpha = alphas[..., 0].reshape(shape)
    depth = torch.where(alpha > 0, colors[..., 3].reshape(shape), torch.zeros_like(alpha))
    return colors[..., :3].reshape(*shape, 3), alpha, depth


@functools.cache
def gsplat_available() -> bool:
    """True when CUDA is present and gsplat's compiled kernels load (checked once)."""
    if not torch.cuda.is_available():
        return False
    try:
        from gsplat.cuda._backend import _C  # noqa: F401  (None when the kernels are not built)

        return _C is not None
    except Exception:  # any import/compile failure means "not usable"
        return False

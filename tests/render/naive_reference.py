"""An independent, deliberately naive splatting reference for the renderer tests.

Every splat is evaluated at every pixel (no tiles, no bounding boxes), sorted
by depth, and composited with an explicit loop over splats, following gsplat's
published rules: EWA projection with the 0.3 px^2 low-pass, alpha =
min(0.999, o exp(-q/2)), alpha < 1/255 skipped, and a pixel stops at the first
splat that would bring its transmittance below 1e-4.
"""

from __future__ import annotations

import torch


def naive_render(means, quats, scales, opacities, colors, c2w, fx, fy, cx, cy, width, height, background, near=0.01):
    w, x, y, z = (quats / quats.norm(dim=-1, keepdim=True)).unbind(-1)
    rot = torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)
    cov3 = rot @ torch.diag_embed(scales**2) @ rot.transpose(-1, -2)
    w2c = torch.linalg.inv(c2w)
    p = means @ w2c[:3, :3].T + w2c[:3, 3]
    cov_c = w2c[:3, :3] @ cov3 @ w2c[:3, :3].T
    tz = p[:, 2]
    # gsplat clamps the Jacobian's x/z, y/z to 1.3x the half-extent of the image.
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    ux = torch.clamp(p[:, 0] / tz, -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x)
    uy = torch.clamp(p[:, 1] / tz, -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
    zeros = torch.zeros_like(tz)
    jac = torch.stack([
        torch.stack([fx / tz, zeros, -fx * ux / tz], -1),
        torch.stack([zeros, fy / tz, -fy * uy / tz], -1),
    ], -2)
    cov2 = jac @ cov_c @ jac.transpose(-1, -2) + 0.3 * torch.eye(2, dtype=means.dtype)
    inv2 = torch.linalg.inv(cov2)
    mean2 = torch.stack([fx * p[:, 0] / tz + cx, fy * p[:, 1] / tz + cy], -1)

    ys, xs = torch.meshgrid(torch.arange(height, dtype=means.dtype) + 0.5, torch.arange(width, dtype=means.dtype) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys], -1)  # [H, W, 2]
    transmittance = torch.ones(height, width, dtype=means.dtype)
    done = torch.zeros(height, width, dtype=torch.bool)
    image = torch.zeros(height, width, colors.shape[-1], dtype=means.dtype)
    for i in torch.argsort(tz).tolist():
        if tz[i] <= near:
            continue
        d = pix - mean2[i]
        q = torch.einsum("hwi,ij,hwj->hw", d, inv2[i], d)
        alpha = torch.clamp(opacities[i] * torch.exp(-0.5 * q), max=0.999)
        alpha = torch.where(alpha < 1.0 / 255.0, torch.zeros_like(alpha), alpha)
        next_t = transmittance * (1 - alpha)
        stop = (next_t < 1e-4) & ~done
        done = done | stop
        use = ~done
        image = image + torch.where(use[..., None], (alpha * transmittance)[..., None] * colors[i], torch.zeros_like(image))
        transmittance = torch.where(use, next_t, transmittance)
    alpha_total = 1 - transmittance
    return image + transmittance[..., None] * torch.as_tensor(background, dtype=means.dtype), alpha_total

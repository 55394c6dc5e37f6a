"""The torch backend against an independent naive splatting reference and gsplat's torch reference."""

from __future__ import annotations

import math

import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

from lyra.errors import InputDataError
from lyra.render import Camera, render
from lyra.render.projection import project_gaussians
from lyra.scene import Gaussians
from lyra.scene.sh import eval_sh
from tests.render.scenes import random_scene


def naive_render(g: Gaussians, cam: Camera, background, sh_degree=None):
    """Every splat at every pixel, an explicit loop over depth-sorted splats, gsplat's rules
    (0.3 px^2 low-pass, alpha = min(0.999, o exp(-q/2)), alpha < 1/255 skipped, stop before
    transmittance would fall below 1e-4). Colours from gsplat's own SH reference."""
    width, height = cam.width, cam.height
    fx, fy, cx, cy = cam.intrinsics.tolist()
    w2c = torch.linalg.inv(cam.c2w)
    cov3, _ = _quat_scale_to_covar_preci(g.quats, g.scales, compute_preci=False)
    p = g.means @ w2c[:3, :3].T + w2c[:3, 3]
    cov_c = w2c[:3, :3] @ cov3 @ w2c[:3, :3].T
    tz = p[:, 2]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    ux = torch.clamp(p[:, 0] / tz, -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x)
    uy = torch.clamp(p[:, 1] / tz, -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y)
    zeros = torch.zeros_like(tz)
    jac = torch.stack([torch.stack([fx / tz, zeros, -fx * ux / tz], -1), torch.stack([zeros, fy / tz, -fy * uy / tz], -1)], -2)
    inv2 = torch.linalg.inv(jac @ cov_c @ jac.transpose(-1, -2) + 0.3 * torch.eye(2, dtype=g.dtype))
    mean2 = torch.stack([fx * p[:, 0] / tz + cx, fy * p[:, 1] / tz + cy], -1)
    degree = g.sh_degree if sh_degree is None else sh_degree
    colors = torch.clamp_min(_spherical_harmonics(degree, g.means - cam.c2w[:3, 3], g.sh) + 0.5, 0.0)

    ys, xs = torch.meshgrid(torch.arange(height, dtype=g.dtype) + 0.5, torch.arange(width, dtype=g.dtype) + 0.5, indexing="ij")
    pix = torch.stack([xs, ys], -1)
    trans = torch.ones(height, width, dtype=g.dtype)
    done = torch.zeros(height, width, dtype=torch.bool)
    image = torch.zeros(height, width, 3, dtype=g.dtype)
    depth = torch.zeros(height, width, dtype=g.dtype)
    for i in torch.argsort(tz).tolist():
        if tz[i] <= 0.01:
            continue
        d = pix - mean2[i]
        alpha = torch.clamp(g.opacities[i] * torch.exp(-0.5 * torch.einsum("hwi,ij,hwj->hw", d, inv2[i], d)), max=0.999)
        alpha = torch.where(alpha < 1 / 255, torch.zeros_like(alpha), alpha)
        next_t = trans * (1 - alpha)
        done = done | (next_t < 1e-4)
        weight = torch.where(done, torch.zeros_like(alpha), alpha * trans)
        image = image + weight[..., None] * colors[i]
        depth = depth + weight * tz[i]
        trans = torch.where(done, trans, next_t)
    alpha_total = 1 - trans
    rgb = image + trans[..., None] * torch.as_tensor(background, dtype=g.dtype)
    return rgb, alpha_total, depth / alpha_total.clamp_min(1e-10)


def psnr(a, b):
    return -10 * math.log10(float(((a - b) ** 2).mean()) + 1e-20)




POSES = [([0.0, 0.0, 0.0], [0.0, 0.0, 3.0]), ([0.8, -0.5, 0.3], [0.1, 0.0, 3.0]), ([-2.0, 0.4, 2.5], [0.0, 0.2, 3.2])]


@pytest.mark.parametrize("background", [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)])
@pytest.mark.parametrize("pose", POSES)
def test_torch_backend_matches_naive_reference_sh0(background, pose):
    g = random_scene(sh_degree=0)
    cam = Camera.look_at(pose[0], pose[1], width=37, height=29, fov_y=math.radians(55))
    out = render(g, cam, background=background, backend="torch")
    ref_rgb, ref_alpha, _ = naive_render(g, cam, background)
    assert psnr(out.rgb, ref_rgb) > 40
    assert psnr(out.alpha, ref_alpha) > 40


@pytest.mark.parametrize("pose", POSES[:2])
def test_torch_backend_matches_naive_reference_sh3(pose):
    g = random_scene(sh_degree=3, seed=1)
    cam = Camera.look_at(pose[0], pose[1], width=32, height=24)
    out = render(g, cam, background=(1.0, 1.0, 1.0), backend="torch")
    ref_rgb, _, _ = naive_render(g, cam, (1.0, 1.0, 1.0))
    assert psnr(out.rgb, ref_rgb) > 40


def test_expected_depth_matches_naive_reference():
    g = random_scene(seed=2)
    cam = Camera.look_at(*POSES[1], width=30, height=20)
    out = render(g, cam, backend="torch")
    _, ref_alpha, ref_depth = naive_render(g, cam, (1.0, 1.0, 1.0))
    hit = ref_alpha > 0.05
    assert torch.allclose(out.depth[hit], ref_depth[hit], rtol=1e-3)


def test_sh_degree_argument_limits_bands():
    g = random_scene(sh_degree=3, seed=3)
    cam = Camera.look_at(*POSES[1], width=24, height=24)
    out = render(g, cam, backend="torch", sh_degree=1)
    ref_rgb, _, _ = naive_render(g, cam, (1.0, 1.0, 1.0), sh_degree=1)
    assert psnr(out.rgb, ref_rgb) > 40


def test_result_does_not_depend_on_tile_size_or_block_budget():
    g = random_scene(n=300, seed=4)
    cam = Camera.look_at(*POSES[0], width=50, height=34)
    base = render(g, cam, backend="torch")
    for tile, block in [(16, 1 << 22), (16, 3000), (4, 500)]:
        other = render(g, cam, backend="torch", tile_size=tile, max_block=block)
        assert torch.allclose(base.rgb, other.rgb, atol=1e-5)


def test_camera_batches_give_leading_dims_and_match_single_renders():
    g = random_scene(seed=5)
    cams = Camera.stack([Camera.look_at(e, t, width=20, height=16) for e, t in POSES])
    out = render(g, Camera(cams.c2w.reshape(3, 1, 4, 4), cams.intrinsics.reshape(3, 1, 4), 20, 16), backend="torch")
    assert out.rgb.shape == (3, 1, 16, 20, 3) and out.alpha.shape == (3, 1, 16, 20) and out.depth.shape == (3, 1, 16, 20)
    single = render(g, cams[2], backend="torch")
    assert torch.allclose(out.rgb[2, 0], single.rgb)


def test_splats_behind_near_plane_are_culled():
    g = random_scene(n=20, seed=6)
    cam = Camera.look_at([0, 0, 10.0], [0, 0, 20.0], width=16, height=16)  # everything is behind
    out = render(g, cam, backend="torch", background=(0.2, 0.3, 0.4))
    assert torch.all(out.alpha == 0)
    assert torch.allclose(out.rgb, torch.tensor([0.2, 0.3, 0.4]).expand(16, 16, 3))


def test_projection_matches_gsplat_torch_reference():
    g = random_scene(n=50, seed=7, dtype=torch.float64)
    cam = Camera.look_at(*POSES[2], width=64, height=48).to(dtype=torch.float64)
    ours = project_gaussians(g.means, g.quats, g.scales, g.opacities, cam.w2c(), cam.intrinsics, 64, 48)
    covars, _ = _quat_scale_to_covar_preci(g.quats, g.scales, compute_preci=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        g.means, covars, cam.w2c()[None], cam.K()[None], 64, 48
    )
    shown = radii[0].prod(-1) > 0
    assert torch.equal(ours.visible[shown], torch.ones(int(shown.sum()), dtype=torch.bool))
    assert torch.allclose(ours.means2d[shown], means2d[0][shown], atol=1e-9)
    assert torch.allclose(ours.conics[shown], conics[0][shown], rtol=1e-9)
    assert torch.allclose(ours.depths, depths[0], atol=1e-12)


def test_eval_sh_matches_gsplat_torch_reference():
    gen = torch.Generator().manual_seed(8)
    coeffs = torch.randn(100, 16, 3, generator=gen, dtype=torch.float64)
    dirs = torch.randn(100, 3, generator=gen, dtype=torch.float64)
    for degree in range(4):
        theirs = torch.clamp_min(_spherical_harmonics(degree, dirs, coeffs) + 0.5, 0)
        assert torch.allclose(eval_sh(coeffs, dirs, degree), theirs, atol=1e-12)


def test_gradients_through_torch_backend_pass_gradcheck():
    g = Gaussians.from_rgb(
        torch.tensor([[0.0, 0.0, 2.0], [0.1, -0.05, 2.3], [-0.08, 0.06, 2.6]], dtype=torch.float64),
        torch.tensor([[1.0, 0.1, 0.0, 0.2], [0.9, 0.0, 0.3, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
        torch.tensor([[0.06, 0.04, 0.05], [0.05, 0.07, 0.04], [0.08, 0.08, 0.08]], dtype=torch.float64),
        torch.tensor([0.7, 0.6, 0.8], dtype=torch.float64),
        torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9]], dtype=torch.float64),
    )
    cam = Camera.look_at([0, 0, 0.0], [0, 0, 1.0], width=8, height=8, fov_y=math.radians(20)).to(dtype=torch.float64)

    def f(means, sh, opacities):
        out = render(g.replace(means=means, sh=sh, opacities=opacities), cam, backend="torch")
        return out.rgb, out.alpha, out.depth

    inputs = (g.means.clone().requires_grad_(), g.sh.clone().requires_grad_(), g.opacities.clone().requires_grad_())
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


def test_auto_backend_renders_on_cpu_with_torch():
    out = render(random_scene(n=10), Camera.look_at(*POSES[0], width=8, height=8), backend="auto")
    assert out.backend == "torch" and out.rgb.shape == (8, 8, 3) and out.alpha.max() > 0


def test_gsplat_backend_without_cuda_raises_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path is for CPU-only machines")
    with pytest.raises(InputDataError, match="CUDA"):
        render(random_scene(n=3), Camera.look_at(*POSES[0], width=8, height=8), backend="gsplat")


def test_row_bands_bound_intersections_without_changing_the_image():
    from lyra.render.torch_rasterizer import rasterize

    g = random_scene(n=300, seed=9)
    cam = Camera.look_at(*POSES[0], width=40, height=40)
    projected = project_gaussians(g.means, g.quats, g.scales, g.opacities, cam.w2c(), cam.intrinsics, 40, 40)
    features = torch.cat([g.rgb(), projected.depths[:, None]], -1)
    whole, whole_alpha = rasterize(projected, features, 40, 40)
    banded, banded_alpha = rasterize(projected, features, 40, 40, max_intersections=50)
    assert torch.allclose(whole, banded, atol=1e-6) and torch.allclose(whole_alpha, banded_alpha, atol=1e-6)


def test_differentiable_and_inference_paths_render_the_same_image():
    g = random_scene(n=200, seed=10)
    cam = Camera.look_at(*POSES[1], width=33, height=27)
    with torch.no_grad():
        inference = render(g, cam, backend="torch")
    tracked = render(g.replace(means=g.means.clone().requires_grad_()), cam, backend="torch")
    assert tracked.rgb.requires_grad
    assert torch.allclose(inference.rgb, tracked.rgb.detach(), atol=1e-6)
    assert torch.allclose(inference.depth, tracked.depth.detach(), atol=1e-5)


def test_recomputed_blocks_give_the_same_gradients(monkeypatch):
    import lyra.render.torch_rasterizer as rasterizer

    g = random_scene(n=80, seed=11)
    cam = Camera.look_at(*POSES[1], width=24, height=20)

    def grads():
        means = g.means.clone().requires_grad_()
        opacities = g.opacities.clone().requires_grad_()
        out = render(g.replace(means=means, opacities=opacities), cam, backend="torch")
        (out.rgb.square().sum() + out.depth.sum()).backward()
        return means.grad, opacities.grad

    stored = grads()
    monkeypatch.setattr(rasterizer, "RECOMPUTE_ABOVE_BYTES", 0)
    recomputed = grads()
    assert stored[0].abs().sum() > 0
    assert torch.allclose(stored[0], recomputed[0], atol=1e-5) and torch.allclose(stored[1], recomputed[1], atol=1e-5)

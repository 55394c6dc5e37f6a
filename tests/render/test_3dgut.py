"""3DGUT in the torch backend (``with_ut``, ``with_eval3d``) against an independent naive reference."""

from __future__ import annotations

import math

import pytest
import torch
from gsplat.cuda._torch_impl import _quat_to_rotmat, _spherical_harmonics

from lyra.render import Camera, render
from lyra.render.projection import project_gaussians
from lyra.render.ut_projection import project_gaussians_ut
from lyra.scene import Gaussians
from tests.render.scenes import random_scene


def naive_ut(g: Gaussians, cam: Camera):
    """gsplat's UT projection written out point by point: (mean2d [N, 2], radii [N, 2], depth [N], valid [N])."""
    width, height = cam.width, cam.height
    fx, fy, cx, cy = cam.intrinsics.tolist()
    w2c = torch.linalg.inv(cam.c2w)
    rot = _quat_to_rotmat(g.quats)
    lam = 0.1**2 * 3 - 3
    wm = [lam / (3 + lam)] + [1 / (2 * (3 + lam))] * 6
    wc = [lam / (3 + lam) + 1 - 0.1**2 + 2] + [1 / (2 * (3 + lam))] * 6
    means2d, radii, depths, valid = [], [], [], []
    for n in range(len(g.means)):
        pts = [g.means[n]]
        for sign in (1, -1):
            for i in range(3):
                pts.append(g.means[n] + sign * math.sqrt(3 + lam) * g.scales[n, i] * rot[n, :, i])
        img, ok_any = [], False
        for p in pts:
            pc = w2c[:3, :3] @ p + w2c[:3, 3]
            if pc[2] <= 0:
                img.append(torch.zeros(2, dtype=g.dtype))
                continue
            q = torch.stack([fx * pc[0] / pc[2] + cx, fy * pc[1] / pc[2] + cy])
            img.append(q)
            ok_any |= bool(-0.1 * width <= q[0] < 1.1 * width and -0.1 * height <= q[1] < 1.1 * height)
        mean = sum(w * q for w, q in zip(wm, img, strict=True))
        cov = sum(w * torch.outer(q - mean, q - mean) for w, q in zip(wc, img, strict=True)) + 0.3 * torch.eye(2, dtype=g.dtype)
        z = float((w2c[:3, :3] @ g.means[n] + w2c[:3, 3])[2])
        det = float(torch.linalg.det(cov))
        o = float(g.opacities[n])
        ext = min(3.33, math.sqrt(2 * math.log(max(o * 255, 1.0))))
        b = 0.5 * float(cov[0, 0] + cov[1, 1])
        r1 = ext * math.sqrt(b + math.sqrt(max(0.01, b * b - det)))
        rx = math.ceil(min(ext * math.sqrt(float(cov[0, 0])), r1)) if det > 0 else 0
        ry = math.ceil(min(ext * math.sqrt(float(cov[1, 1])), r1)) if det > 0 else 0
        ok = ok_any and 0.01 <= z and det > 0 and o >= 1 / 255
        ok = ok and float(mean[0]) + rx > 0 and float(mean[0]) - rx < width
        ok = ok and float(mean[1]) + ry > 0 and float(mean[1]) - ry < height
        means2d.append(mean)
        radii.append(torch.tensor([rx, ry], dtype=g.dtype))
        depths.append(z)
        valid.append(ok)
    return torch.stack(means2d), torch.stack(radii), torch.tensor(depths, dtype=g.dtype), torch.tensor(valid)


def naive_render_3dgut(g: Gaussians, cam: Camera, background, sh_degree=None):
    """Every splat at every pixel in depth order: the ray through each pixel centre, gsplat's
    3D response |normalize(M d) x M (o - mu)|^2 with M = S^-1 R^T, inside the UT box only."""
    width, height = cam.width, cam.height
    fx, fy, cx, cy = cam.intrinsics.tolist()
    mean2d, radii, depth, valid = naive_ut(g, cam)
    ys, xs = torch.meshgrid(torch.arange(height, dtype=g.dtype) + 0.5, torch.arange(width, dtype=g.dtype) + 0.5, indexing="ij")
    dirs_cam = torch.stack([(xs - cx) / fx, (ys - cy) / fy, torch.ones_like(xs)], -1)
    dirs = dirs_cam @ cam.c2w[:3, :3].T  # [H, W, 3] world
    origin = cam.c2w[:3, 3]
    rot = _quat_to_rotmat(g.quats)
    degree = g.sh_degree if sh_degree is None else sh_degree
    colors = torch.clamp_min(_spherical_harmonics(degree, g.means - origin, g.sh) + 0.5, 0.0)
    trans = torch.ones(height, width, dtype=g.dtype)
    done = torch.zeros(height, width, dtype=torch.bool)
    image = torch.zeros(height, width, 3, dtype=g.dtype)
    acc_depth = torch.zeros(height, width, dtype=g.dtype)
    for i in torch.argsort(depth).tolist():
        if not valid[i]:
            continue
        whiten = torch.diag(1 / g.scales[i]) @ rot[i].T
        gro = whiten @ (origin - g.means[i])
        grd = torch.nn.functional.normalize(dirs @ whiten.T, dim=-1)
        dist2 = torch.linalg.cross(grd, gro.expand_as(grd), dim=-1).square().sum(-1)
        alpha = torch.clamp(g.opacities[i] * torch.exp(-0.5 * dist2), max=0.999)
        inside = ((xs - mean2d[i, 0]).abs() <= radii[i, 0]) & ((ys - mean2d[i, 1]).abs() <= radii[i, 1])
        alpha = torch.where((alpha < 1 / 255) | ~inside, torch.zeros_like(alpha), alpha)
        next_t = trans * (1 - alpha)
        done = done | (next_t < 1e-4)
        weight = torch.where(done, torch.zeros_like(alpha), alpha * trans)
        image = image + weight[..., None] * colors[i]
        acc_depth = acc_depth + weight * depth[i]
        trans = torch.where(done, trans, next_t)
    alpha_total = 1 - trans
    rgb = image + trans[..., None] * torch.as_tensor(background, dtype=g.dtype)
    return rgb, alpha_total, acc_depth / alpha_total.clamp_min(1e-10)


def psnr(a, b, peak=1.0):
    return 10 * math.log10(peak**2 / (float(((a - b) ** 2).mean()) + 1e-20))




def near_scene(n=40, seed=0, dtype=torch.float32):
    """Large, elongated splats close to a wide camera: where linearised (EWA) projection is poor."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.rand(n, 3, generator=gen) * torch.tensor([2.0, 1.6, 1.2]) + torch.tensor([-1.0, -0.8, 0.5])
    scales = torch.rand(n, 3, generator=gen) * torch.tensor([0.5, 0.3, 0.05]) + 0.04
    g = Gaussians.from_rgb(
        means, torch.randn(n, 4, generator=gen), scales, torch.rand(n, generator=gen) * 0.5 + 0.3,
        torch.rand(n, 3, generator=gen),
    )
    return g.to(dtype=dtype)


POSES = [([0.0, 0.0, 0.0], [0.0, 0.0, 3.0]), ([0.8, -0.5, 0.3], [0.1, 0.0, 3.0]), ([-2.0, 0.4, 2.5], [0.0, 0.2, 3.2])]
GUT = dict(backend="torch", with_ut=True, with_eval3d=True)


@pytest.mark.parametrize("background", [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)])
@pytest.mark.parametrize("pose", POSES)
def test_3dgut_matches_naive_reference_sh0(background, pose):
    g = random_scene(sh_degree=0)
    cam = Camera.look_at(pose[0], pose[1], width=37, height=29, fov_y=math.radians(55))
    out = render(g, cam, background=background, **GUT)
    ref_rgb, ref_alpha, ref_depth = naive_render_3dgut(g, cam, background)
    assert out.alpha.max() > 0.5
    assert psnr(out.rgb, ref_rgb) > 45
    assert psnr(out.alpha, ref_alpha) > 45
    hit = ref_alpha > 0.05
    assert torch.allclose(out.depth[hit], ref_depth[hit], rtol=1e-3)


@pytest.mark.parametrize("pose", POSES[:2])
def test_3dgut_matches_naive_reference_sh3(pose):
    g = random_scene(sh_degree=3, seed=1)
    cam = Camera.look_at(pose[0], pose[1], width=32, height=24)
    out = render(g, cam, background=(1.0, 1.0, 1.0), **GUT)
    ref_rgb, ref_alpha, _ = naive_render_3dgut(g, cam, (1.0, 1.0, 1.0))
    assert psnr(out.rgb, ref_rgb) > 45 and psnr(out.alpha, ref_alpha) > 45


@pytest.mark.parametrize("background", [(1.0, 1.0, 1.0), (0.0, 0.0, 0.0)])
def test_large_near_splats_differ_from_ewa_and_match_reference(background):
    g = near_scene()
    cam = Camera.look_at([0.0, 0.0, -0.3], [0.0, 0.0, 2.0], width=48, height=36, fov_y=math.radians(90))
    gut = render(g, cam, background=background, **GUT)
    ewa = render(g, cam, background=background, backend="torch")
    ref_rgb, ref_alpha, ref_depth = naive_render_3dgut(g, cam, background)
    assert psnr(gut.rgb, ref_rgb) > 45 and psnr(gut.alpha, ref_alpha) > 45
    hit = ref_alpha > 0.05
    assert torch.allclose(gut.depth[hit], ref_depth[hit], rtol=1e-3)
    assert psnr(ewa.rgb, gut.rgb) < 30  # the two projections disagree visibly on this scene
    assert (ewa.rgb - gut.rgb).abs().amax(-1).gt(0.1).float().mean() > 0.05


def test_ut_projection_matches_naive_sigma_points():
    g = near_scene(n=30, seed=3, dtype=torch.float64)
    # Some behind the camera, some far off-screen, one too transparent: all must be culled.
    shift = torch.zeros(30, 3, dtype=torch.float64)
    shift[:4, 2], shift[4:8, 0], shift[8:10, 1] = -3.0, 8.0, -6.0
    g = g.replace(means=g.means + shift, opacities=torch.where(torch.arange(30) == 12, 1e-3, g.opacities))
    cam = Camera.look_at([0.0, 0.0, -0.3], [0.0, 0.0, 2.0], width=48, height=36, fov_y=math.radians(90)).to(
        dtype=torch.float64
    )
    ours = project_gaussians_ut(g.means, g.quats, g.scales, g.opacities, cam.w2c(), cam.intrinsics, 48, 36)
    mean2d, radii, depth, valid = naive_ut(g, cam)
    assert valid.any() and (~valid).any()
    assert torch.equal(ours.visible, valid)
    assert torch.allclose(ours.means2d[valid], mean2d[valid], atol=1e-9)
    assert torch.equal(ours.extents[valid], radii[valid])
    assert torch.allclose(ours.depths, depth, atol=1e-12)


def test_gradients_through_3dgut_pass_gradcheck():
    g = Gaussians.from_rgb(
        torch.tensor([[0.0, 0.0, 2.0], [0.1, -0.05, 2.3], [-0.08, 0.06, 2.6]], dtype=torch.float64),
        torch.tensor([[1.0, 0.1, 0.0, 0.2], [0.9, 0.0, 0.3, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
        torch.tensor([[0.06, 0.04, 0.05], [0.05, 0.07, 0.04], [0.08, 0.08, 0.08]], dtype=torch.float64),
        torch.tensor([0.7, 0.6, 0.8], dtype=torch.float64),
        torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.3, 0.9]], dtype=torch.float64),
    )
    cam = Camera.look_at([0, 0, 0.0], [0, 0, 1.0], width=8, height=8, fov_y=math.radians(20)).to(dtype=torch.float64)

    def f(means, quats, scales, opacities, sh):
        out = render(g.replace(means=means, quats=quats, scales=scales, opacities=opacities, sh=sh), cam, **GUT)
        return out.rgb, out.alpha, out.depth

    inputs = tuple(t.clone().requires_grad_() for t in (g.means, g.quats, g.scales, g.opacities, g.sh))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, fast_mode=True)
    f(*inputs)[0].sum().backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in inputs)


@pytest.mark.slow
def test_3dgut_does_not_depend_on_tile_size_block_budget_or_recompute(monkeypatch):
    import lyra.render.torch_rasterizer as rasterizer

    g = random_scene(n=200, seed=4)
    cam = Camera.look_at(*POSES[0], width=50, height=34)

    def run(**kwargs):
        means = g.means.clone().requires_grad_()
        out = render(g.replace(means=means), cam, **GUT, **kwargs)
        (out.rgb.square().sum() + out.depth.sum()).backward()
        return out.rgb.detach(), means.grad

    base_rgb, base_grad = run()
    for tile, block in [(16, 1 << 22), (4, 500)]:
        rgb, grad = run(tile_size=tile, max_block=block)
        assert torch.allclose(base_rgb, rgb, atol=1e-4) and torch.allclose(base_grad, grad, rtol=1e-3, atol=1e-3)
    monkeypatch.setattr(rasterizer, "RECOMPUTE_ABOVE_BYTES", 0)
    rgb, grad = run()
    assert torch.allclose(base_rgb, rgb, atol=1e-6) and torch.allclose(base_grad, grad, atol=1e-5)
    with torch.no_grad():
        inference = render(g, cam, **GUT)
    assert torch.allclose(inference.rgb, base_rgb, atol=1e-6)


def test_auto_backend_sends_3dgut_to_torch_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("with CUDA, auto picks gsplat")
    g = near_scene(n=20, seed=5)
    cam = Camera.look_at([0.0, 0.0, -0.3], [0.0, 0.0, 2.0], width=24, height=18, fov_y=math.radians(90))
    auto = render(g, cam, backend="auto", with_ut=True, with_eval3d=True)
    assert auto.backend == "torch"
    assert torch.equal(auto.rgb, render(g, cam, **GUT).rgb)
    assert not torch.allclose(auto.rgb, render(g, cam, backend="torch").rgb, atol=1e-2)


def test_ut_alone_and_eval3d_alone_are_supported():
    g = random_scene(n=60, seed=6, dtype=torch.float64)
    cam = Camera.look_at(*POSES[1], width=24, height=20).to(dtype=torch.float64)
    ewa = render(g, cam, backend="torch")
    for flags in (dict(with_ut=True), dict(with_eval3d=True), dict(with_ut=True, rasterize_mode="antialiased")):
        out = render(g, cam, backend="torch", **flags)
        assert 18 < psnr(out.rgb, ewa.rgb) < 100  # same scene, slightly different rules
    # For small splats the UT's 2D Gaussian is nearly the EWA linearisation.
    ut = project_gaussians_ut(g.means, g.quats, g.scales, g.opacities, cam.w2c(), cam.intrinsics, 24, 20)
    lin = project_gaussians(g.means, g.quats, g.scales, g.opacities, cam.w2c(), cam.intrinsics, 24, 20)
    both = ut.visible & lin.visible
    assert both.sum() > 20
    assert torch.allclose(ut.means2d[both], lin.means2d[both], atol=0.25)
    assert torch.allclose(ut.conics[both], lin.conics[both], rtol=0.05, atol=1e-3)

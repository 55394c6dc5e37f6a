"""The 3D cache against analytic cases, and the fast splat against a plain per-point scatter."""

import math

import pytest
import torch

from lyra.render.camera import intrinsics_matrix
from lyra.teacher.cache3d import Cache3D, align_depth
from lyra.teacher.occlusion import rasterize_nearest_depth
from lyra.teacher.warp import project, reliable_depth_mask, soft_zbuffer_weights, splat_projected

H, W, FOCAL = 40, 64, 100.0
INTR = torch.tensor([FOCAL, FOCAL, W / 2, H / 2])


def textured_image(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, H, W, generator=g) * 1.6 - 0.8  # [-0.8, 0.8], away from the clamp


def w2c_of_camera_at(x=0.0, y=0.0, z=0.0):
    w2c = torch.eye(4)
    w2c[:3, 3] = -torch.tensor([x, y, z])
    return w2c


@pytest.mark.parametrize("baseline,shift", [(0.1, 5), (0.05, 2.5)])
def test_fronto_parallel_plane_shifts_by_f_b_over_z(baseline, shift):
    depth_value = 2.0
    assert math.isclose(FOCAL * baseline / depth_value, shift)
    image = textured_image()
    cache = Cache3D(image, torch.full((H, W), depth_value), INTR, foreground_masking=False)
    images, masks, depth = cache.render(w2c_of_camera_at(x=baseline)[None], INTR[None])
    out, hit = images[0, 0], masks[0, 0, 0] > 0
    whole = int(shift)
    if shift == whole:  # content moves left by exactly `shift` pixels
        assert torch.allclose(out[:, :, : W - whole], image[:, :, whole:], atol=5e-4)  # float32 projection round-off
    else:  # half-pixel shift: the average of the two source pixels
        expected = 0.5 * (image[:, :, whole : W - 1] + image[:, :, whole + 1 :])
        assert torch.allclose(out[:, :, : W - whole - 1], expected, atol=5e-4)
    assert hit[:, : W - math.ceil(shift)].all() and not hit[:, W - math.floor(shift) :].any()
    assert (out[:, ~hit] == -1).all()  # holes are -1
    assert torch.allclose(depth[0, 0][hit], torch.tensor(depth_value), atol=1e-5)


def two_plane_scene():
    """A near square (z=1, colour +0.5) in front of a far plane (z=3, colour -0.5)."""
    image = torch.full((3, H, W), -0.5)
    depth = torch.full((H, W), 3.0)
    image[:, 10:30, 20:40] = 0.5
    depth[10:30, 20:40] = 1.0
    return image, depth


def test_occluder_hides_what_is_behind_it():
    image, depth = two_plane_scene()
    cache = Cache3D(image, depth, INTR, foreground_masking=False, filter_threshold=1.0)
    baseline = 0.1  # near square moves by 10 px, far plane by 10/3 px
    images, masks, _ = cache.render(w2c_of_camera_at(x=baseline)[None], INTR[None])
    out, hit = images[0, 0, 0], masks[0, 0, 0] > 0
    # Where the square lands (columns 10..29), it covers background that is also projected there.
    assert torch.allclose(out[12:28, 11:29], torch.tensor(0.5), atol=1e-5)
    # The soft z-buffer: a far point contributing to an edge pixel of the near square changes it by < 1e-9.
    w_near = soft_zbuffer_weights(torch.tensor(1.0), torch.log1p(torch.tensor(3.0)))
    w_far = soft_zbuffer_weights(torch.tensor(3.0), torch.log1p(torch.tensor(3.0)))
    assert w_far / w_near < 1e-10
    # Background right of the square's new position is background.
    assert torch.allclose(out[12:28, 45:55], torch.tensor(-0.5), atol=1e-5)
    assert hit[12:28, 45:55].all()


def test_foreground_masking_hides_background_seen_through_the_depth_edge():
    image, depth = two_plane_scene()
    common = dict(filter_threshold=0.05)
    plain = Cache3D(image, depth, INTR, foreground_masking=False, **common)
    masked = Cache3D(image, depth, INTR, foreground_masking=True, **common)
    cam = w2c_of_camera_at(x=-0.1)[None]  # camera moves left: the square moves right and uncovers its left side
    img_p, mask_p, _ = plain.render(cam, INTR[None])
    img_m, mask_m, _ = masked.render(cam, INTR[None])
    removed = (mask_p[0, 0, 0] > 0) & ~(mask_m[0, 0, 0] > 0)
    assert removed.any()
    assert (img_m[0, 0][:, removed] == -1).all()
    # Away from the top and bottom edges, only background pixels between the far plane's shifted square edge
    # (x = 20 + 10/3) and the near square's new left edge (x = 30) can lie behind the wall joining the two.
    rows, cols = torch.nonzero(removed, as_tuple=True)
    assert rows.min() >= 4 and rows.max() < 36 and cols.min() >= 15 and cols.max() < 55  # only near the square
    middle = removed[14:26]
    assert middle.any()
    cols = torch.nonzero(middle)[:, 1]
    assert cols.min() >= 20 and cols.max() <= 31
    # The square itself (the near surface) is never masked.
    assert (mask_m[0, 0, 0, 14:26, 33:48] > 0).all()


def test_mesh_rasterizer_gives_the_plane_depth():
    # Two triangles spanning a tilted quad z = 2 + 0.01 x (camera frame), seen by the identity camera.
    K = intrinsics_matrix(INTR)
    corners = []
    for px, py in [(5, 5), (50, 5), (5, 30), (50, 30)]:
        for _ in range(1):
            # solve z from the ray through (px, py): X = (px - cx) z / f, z = 2 + 0.01 X
            a = (px - INTR[2]) / FOCAL
            z = 2.0 / (1 - 0.01 * a)
            corners.append([a * z, (py - INTR[3]) / FOCAL * z, z])
    vertices = torch.tensor(corners)
    faces = torch.tensor([[0, 1, 2], [1, 3, 2]])
    depth = rasterize_nearest_depth(vertices, faces, K, H, W)
    inside = torch.isfinite(depth)
    assert inside[6:29, 6:49].all() and not inside[:4].any() and not inside[:, 52:].any()
    ys, xs = torch.nonzero(inside, as_tuple=True)
    a = (xs.float() - INTR[2]) / FOCAL
    expected = 2.0 / (1 - 0.01 * a)
    assert torch.allclose(depth[ys, xs], expected, atol=1e-5)


def per_point_splat(u, v, z, values, mask, height, width, log_max):
    """The official structure: every point, 4 index_put_ with accumulate (written from the spec, not fast)."""
    values = values.T  # [P, C]
    weight = mask * (z > 0) * soft_zbuffer_weights(z, log_max)
    grid = torch.zeros(height + 2, width + 2, values.shape[1] + 1)
    ou, ov = (u + 1).clamp(0, width + 1), (v + 1).clamp(0, height + 1)
    fu, fv = torch.floor(u + 1).clamp(0, width + 1).long(), torch.floor(v + 1).clamp(0, height + 1).long()
    cu, cv = torch.ceil(u + 1).clamp(0, width + 1).long(), torch.ceil(v + 1).clamp(0, height + 1).long()
    packed = torch.cat([values, torch.ones_like(z)[:, None]], 1)
    for yy, xx, wgt in [
        (fv, fu, (1 - (ov - fv)) * (1 - (ou - fu))),
        (cv, fu, (1 - (cv - ov)) * (1 - (ou - fu))),
        (fv, cu, (1 - (ov - fv)) * (1 - (cu - ou))),
        (cv, cu, (1 - (cv - ov)) * (1 - (cu - ou))),
    ]:
        grid.index_put_((yy, xx), packed * (wgt * weight)[:, None], accumulate=True)
    grid = grid[1:-1, 1:-1]
    hit = grid[..., -1] > 0
    image = torch.where(hit[..., None], grid[..., :-1] / grid[..., -1:].clamp(min=1e-30), torch.tensor(-1.0)).clamp(-1, 1)
    return image.permute(2, 0, 1), hit


def test_fast_splat_equals_the_per_point_scatter_on_a_random_scene():
    g = torch.Generator().manual_seed(4)
    depth = 1 + 3 * torch.rand(H, W, generator=g)
    depth[:5] = 0  # some pixels without depth
    cache = Cache3D(textured_image(1), depth, INTR, foreground_masking=False, filter_threshold=1.0)
    buf = cache.buffers[0]
    w2c = w2c_of_camera_at(x=0.07, y=-0.03, z=0.2)
    w2c[:3, :3] = torch.linalg.matrix_exp(torch.tensor([[0, -0.05, 0.1], [0.05, 0, -0.02], [-0.1, 0.02, 0]]))
    u, v, z = project(buf.points, w2c, intrinsics_matrix(INTR))
    log_max = torch.log1p(z.clamp(min=0)).max()
    fast_image, fast_hit, _ = splat_projected(u, v, z, buf.colors, buf.mask, H, W, log_max)
    ref_image, ref_hit = per_point_splat(u, v, z, buf.colors, buf.mask, H, W, log_max)
    assert torch.equal(fast_hit, ref_hit)
    assert torch.allclose(fast_image, ref_image, atol=1e-5)


def test_reliability_mask_flags_depth_edges_and_zero_depth():
    depth = torch.full((20, 20), 2.0)
    depth[:, 10:] = 4.0
    depth[0, 0] = 0.0
    mask = reliable_depth_mask(depth)
    assert not mask[:, 8:12].any()  # within 2 px of the edge
    assert mask[5:15, 2:7].all() and mask[5:15, 13:18].all()
    assert not mask[0, 0]


def test_two_buffers_newest_first_and_the_input_stays_last():
    image, depth = two_plane_scene()
    cache = Cache3D(image, depth, INTR, foreground_masking=False)
    for step in range(3):
        cache.update(torch.full((3, H, W), 0.1 * step), depth * 1.0, w2c_of_camera_at(x=0.01 * step), INTR, align=False)
        assert cache.num_buffers == 2
        assert torch.allclose(cache.buffers[0].colors, torch.tensor(0.1 * step))
        assert torch.equal(cache.buffers[1].colors, image.reshape(3, -1))
    images, masks, depths = cache.render(torch.stack([torch.eye(4)] * 3), INTR.expand(3, 4))
    assert images.shape == (3, 2, 3, H, W) and masks.shape == (3, 2, 1, H, W) and depths.shape == (3, 2, H, W)


def test_align_depth_recovers_an_affine_inverse_depth_change():
    target = 2.0 + torch.rand(H, W, generator=torch.Generator().manual_seed(5))
    predicted = 1.0 / (0.5 / target + 0.1)  # inverse depth off by scale 0.5 and bias 0.1
    mask = torch.ones(H, W, dtype=torch.bool)
    rigid = align_depth(predicted, target, mask, intrinsics_matrix(INTR), non_rigid=False)
    assert torch.allclose(rigid, target, rtol=1e-3)
    refined = align_depth(predicted * 1.01, target, mask, intrinsics_matrix(INTR), iterations=20)
    assert (refined - target).abs().mean() < 0.01

"""The fast lift: analytic depth (a plane, a step edge), a real photo, and a real stereo pair.

The stereo pair is Middlebury 2014 "Motorcycle" (Scharstein et al., GCPR 2014) as bundled in
scikit-image's wheel (``skimage.data.stereo_motorcycle``, no download): two real photos from
rectified cameras 193 mm apart, with ground-truth disparity for the left one. We lift the left
photo with its ground-truth depth, render it from the right camera, and compare with the right
photo, which nobody on the team rendered.
"""

import math

import numpy as np
import pytest
import torch

from lyra.errors import InputDataError
from lyra.pipeline import lift_image
from lyra.pipeline.lift import MIN_EDGE_OPACITY
from lyra.render import Camera, render

# Calibration of the down-sampled pair, from skimage's docstring (Middlebury's, divided by 4).
MOTO_FOCAL, MOTO_CX, MOTO_CY, MOTO_DOFFS, MOTO_BASELINE = 994.978, 311.193, 254.877, 31.086, 0.193001


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    err = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2
    err = err[mask] if mask is not None else err
    return float(-10 * np.log10(err.mean()))


def render_np(gaussians, c2w, intrinsics, width, height):
    camera = Camera(torch.as_tensor(c2w, dtype=torch.float32), torch.tensor(intrinsics, dtype=torch.float32), width, height)
    out = render(gaussians, camera, backend="torch")
    return out.rgb.numpy(), out.alpha.numpy()


@pytest.fixture(scope="module")
def photo():
    from skimage.data import astronaut

    return astronaut()[::2, ::2].copy()  # [256, 256, 3] uint8, a real photo with fine detail


def test_plane_points_lie_on_their_pixel_rays_at_the_given_depth():
    depth = np.full((4, 6), 2.0, np.float32)
    g = lift_image(np.zeros((4, 6, 3), np.uint8), depth, [10.0, 20.0, 3.0, 2.0])
    assert len(g) == 24
    assert torch.allclose(g.means[:, 2], torch.full((24,), 2.0))
    # Pixel (col 0, row 0) has its centre at (0.5, 0.5): x = (0.5 - 3) / 10 * 2, y = (0.5 - 2) / 20 * 2.
    assert g.means[0].tolist() == pytest.approx([-0.5, -0.15, 2.0])
    assert g.means[1, 0] - g.means[0, 0] == pytest.approx(0.2)  # row-major: the next one is the next column


def test_gaussians_are_discs_facing_the_ray_sized_to_the_pixel_footprint():
    from lyra.scene import quats_to_rotmats

    depth = np.full((5, 5), 3.0, np.float32)
    g = lift_image(np.zeros((5, 5, 3), np.uint8), depth, [100.0, 100.0, 2.5, 2.5], footprint=0.5)
    centre = 12  # the pixel on the optical axis
    assert g.scales[centre].tolist() == pytest.approx([0.015, 0.015, 0.0015])  # 0.5 px * z / f, thin along the ray
    rot = quats_to_rotmats(g.quats)
    rays = g.means / g.means.norm(dim=-1, keepdim=True)
    assert torch.allclose(rot[:, :, 2], rays, atol=1e-6)  # thin axis = view ray everywhere


@pytest.mark.slow
def test_lift_reproduces_a_photo_from_its_own_camera(photo):
    h, w = photo.shape[:2]
    intrinsics = [300.0, 300.0, w / 2, h / 2]
    tilted = (2.0 + np.linspace(0.0, 1.0, h)[:, None] * np.ones((1, w))).astype(np.float32)  # a floor-like slope
    g = lift_image(photo, tilted, intrinsics)
    rgb, alpha = render_np(g, np.eye(4), intrinsics, w, h)
    assert alpha.min() > 0.98
    assert psnr(rgb, photo / 255.0) >= 28.0


@pytest.mark.slow
def test_plane_seen_from_a_sideways_camera_shifts_by_f_b_over_z(photo):
    h, w = photo.shape[:2]
    f, z, shift_px = 300.0, 2.0, 6
    baseline = shift_px * z / f
    g = lift_image(photo, np.full((h, w), z, np.float32), [f, f, w / 2, h / 2])
    c2w = np.eye(4)
    c2w[0, 3] = baseline  # camera moves right: the picture moves left by f * b / z pixels
    rgb, alpha = render_np(g, c2w, [f, f, w / 2, h / 2], w, h)
    expected = photo[:, shift_px:] / 255.0
    assert psnr(rgb[:, : w - shift_px], expected) >= 28.0
    assert alpha[:, w - shift_px + 1 :].max() < 0.05  # nothing was lifted beyond the right border


def test_lift_with_a_pose_equals_moving_the_camera_with_it(photo):
    small = photo[::4, ::4]
    h, w = small.shape[:2]
    intrinsics = [80.0, 80.0, w / 2, h / 2]
    depth = (1.5 + np.random.default_rng(0).random((h, w)) * 0.1).astype(np.float32)
    angle = 0.3
    c2w = np.eye(4)
    c2w[:3, :3] = [[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]]
    c2w[:3, 3] = [0.4, -0.2, 1.0]
    posed = lift_image(small, depth, intrinsics, c2w=c2w)
    plain = lift_image(small, depth, intrinsics)
    rgb_posed, _ = render_np(posed, c2w, intrinsics, w, h)
    rgb_plain, _ = render_np(plain, np.eye(4), intrinsics, w, h)
    diff = np.abs(rgb_posed - rgb_plain)  # float32 round-off can swap the order of near-equal depths
    assert diff.mean() < 1e-4 and diff.max() < 1e-2


def _step_scene(ramp: bool):
    """Near wall (1 m) left, far wall (3 m) right; ``ramp``: depth blurred across 3 px as a depth network does."""
    h, w = 32, 64
    depth = np.where(np.arange(w) < w // 2, 1.0, 3.0).astype(np.float32) * np.ones((h, 1), np.float32)
    if ramp:
        depth[:, w // 2 - 1 : w // 2 + 2] = [1.5, 2.0, 2.5]
    image = np.zeros((h, w, 3), np.uint8)
    image[:, : w // 2] = (200, 30, 30)
    image[:, w // 2 :] = (30, 30, 200)
    return image, depth, [40.0, 40.0, w / 2, h / 2]


def test_opacity_drops_only_at_the_depth_step():
    image, depth, intrinsics = _step_scene(ramp=False)
    g = lift_image(image, depth, intrinsics)
    opacity = g.opacities.reshape(32, 64)
    assert torch.allclose(opacity[:, :31], torch.full((32, 31), 0.99))
    assert torch.allclose(opacity[:, 33:], torch.full((32, 31), 0.99))
    assert torch.allclose(opacity[:, 31:33], torch.full((32, 2), 0.99 * MIN_EDGE_OPACITY))
    smooth = lift_image(image, np.full_like(depth, 2.0), intrinsics)
    assert torch.allclose(smooth.opacities, torch.full((32 * 64,), 0.99))


def test_a_blurred_depth_step_does_not_become_a_rubber_sheet():
    image, depth, intrinsics = _step_scene(ramp=True)
    c2w = np.eye(4)
    c2w[0, 3] = 0.2  # sideways: the near wall slides 8 px, the far one 2.7 px, a gap opens between them
    gap = (slice(4, 28), slice(26, 30))  # columns the ramp pixels land in, where only background belongs
    soft = lift_image(image, depth, intrinsics)
    hard = lift_image(image, depth, intrinsics, edge_opacity=False)
    _, alpha_soft = render_np(soft, c2w, intrinsics, 64, 32)
    _, alpha_hard = render_np(hard, c2w, intrinsics, 64, 32)
    assert alpha_hard[gap].mean() > 0.3  # without the edge rule the ramp hangs in the gap
    assert alpha_soft[gap].mean() < 0.6 * alpha_hard[gap].mean()


def test_pixels_without_depth_give_no_gaussians():
    depth = np.ones((3, 3), np.float32)
    depth[0, 0], depth[1, 1], depth[2, 2] = np.nan, -1.0, np.inf
    g = lift_image(np.zeros((3, 3, 3)), depth, [3.0, 3.0, 1.5, 1.5])
    assert len(g) == 6
    cols = (g.means[:, 0] / g.means[:, 2] * 3.0 + 1.5 - 0.5).round().int()  # back to pixel columns
    rows = (g.means[:, 1] / g.means[:, 2] * 3.0 + 1.5 - 0.5).round().int()
    assert (rows * 3 + cols).tolist() == [1, 2, 3, 5, 6, 7]


def test_bad_inputs_are_explained():
    with pytest.raises(InputDataError, match="depth must be"):
        lift_image(np.zeros((4, 4, 3)), np.ones((4, 5)), [1, 1, 2, 2])
    with pytest.raises(InputDataError, match="RGB"):
        lift_image(np.zeros((4, 4)), np.ones((4, 4)), [1, 1, 2, 2])
    with pytest.raises(InputDataError, match="focal"):
        lift_image(np.zeros((4, 4, 3)), np.ones((4, 4)), [0, 1, 2, 2])
    with pytest.raises(InputDataError, match="rigid"):
        lift_image(np.zeros((4, 4, 3)), np.ones((4, 4)), [1, 1, 2, 2], c2w=2 * np.eye(4))


# --------------------------------------------------------------------------- the real stereo pair
@pytest.fixture(scope="module")
def motorcycle():
    """Left/right photos and left z-depth (metres, NaN = unknown), down-sampled 2x more (250 x 370)."""
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    depth = MOTO_FOCAL * MOTO_BASELINE / (disparity + MOTO_DOFFS)  # Middlebury: Z = f B / (d + doffs)
    depth[~np.isfinite(disparity)] = np.nan
    s = 2
    h, w = left.shape[0] // s, left.shape[1] // s

    def down(a):  # block mean; a block with any unknown depth stays unknown
        return a[: h * s, : w * s].reshape(h, s, w, s, *a.shape[2:]).mean(axis=(1, 3))

    # Middlebury's principal points count pixel centres from 0; ours from +0.5.
    k_left = [MOTO_FOCAL / s, MOTO_FOCAL / s, (MOTO_CX + 0.5) / s, (MOTO_CY + 0.5) / s]
    k_right = [k_left[0], k_left[1], (MOTO_CX + MOTO_DOFFS + 0.5) / s, k_left[3]]
    return down(left / 255.0), down(right / 255.0), down(depth).astype(np.float32), k_left, k_right


@pytest.mark.slow
def test_real_photo_with_real_depth_is_reproduced_from_its_camera(motorcycle):
    left, _, depth, k_left, _ = motorcycle
    g = lift_image(left, depth, k_left)
    rgb, _ = render_np(g, np.eye(4), k_left, left.shape[1], left.shape[0])
    assert psnr(rgb, left, np.isfinite(depth)) >= 28.0


@pytest.mark.slow
def test_real_stereo_pair_the_right_camera_sees_what_the_lift_renders(motorcycle):
    left, right, depth, k_left, k_right = motorcycle
    h, w = left.shape[:2]
    c2w = np.eye(4)
    c2w[0, 3] = MOTO_BASELINE  # rectified pair: the right camera sits 193 mm along +x
    rgb, alpha = render_np(lift_image(left, depth, k_left), c2w, k_right, w, h)
    flat = lift_image(left, np.full_like(depth, np.nanmedian(depth)), k_left)  # baseline: right scale, no shape
    rgb_flat, alpha_flat = render_np(flat, c2w, k_right, w, h)
    seen = (alpha > 0.95) & (alpha_flat > 0.95)  # pixels both lifts cover (disocclusions are not judged)
    assert seen.mean() > 0.6
    lifted = psnr(rgb, right, seen)
    assert lifted >= 24.0  # measured 26.2 dB
    assert lifted >= psnr(rgb_flat, right, seen) + 8.0  # the depth, not just the scale, is what matches
    assert lifted >= psnr(left, right, seen) + 10.0  # far better than not moving at all

"""Camera: OpenCV conventions, look_at, intrinsics, rays, and the viser conversion."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from lyra.errors import InputDataError
from lyra.render import Camera, look_at_c2w, pixel_rays


def test_look_at_points_z_at_target_and_image_up_along_up():
    c2w = look_at_c2w([1.0, 2.0, -3.0], [0.0, 0.0, 1.0], up=[0.0, -1.0, 0.0])
    forward = torch.tensor([-1.0, -2.0, 4.0]) / math.sqrt(21)
    assert torch.allclose(c2w[:3, 2], forward, atol=1e-6)
    assert torch.allclose(c2w[:3, :3].T @ c2w[:3, :3], torch.eye(3), atol=1e-6)
    assert torch.det(c2w[:3, :3]) > 0
    assert float(c2w[:3, 1] @ torch.tensor([0.0, -1.0, 0.0])) < 0  # camera y (down) opposes world up
    assert abs(float(c2w[:3, 0] @ torch.tensor([0.0, -1.0, 0.0]))) < 1e-6  # x is horizontal


def test_identity_look_at_is_the_opencv_identity_camera():
    assert torch.allclose(look_at_c2w([0.0, 0, 0], [0.0, 0, 5]), torch.eye(4))


def test_look_at_rejects_degenerate_views():
    with pytest.raises(InputDataError, match="coincide"):
        look_at_c2w([1.0, 1, 1], [1.0, 1, 1])
    with pytest.raises(InputDataError, match="parallel"):
        look_at_c2w([0.0, 0, 0], [0.0, -3, 0])


def test_from_fov_sets_square_pixels_and_centred_principal_point():
    cam = Camera.from_fov(torch.eye(4), math.radians(90), 200, 100)
    assert torch.allclose(cam.intrinsics, torch.tensor([50.0, 50.0, 100.0, 50.0]))
    assert math.isclose(float(cam.fov_y), math.radians(90), rel_tol=1e-6)


def test_resized_scales_intrinsics_with_the_image():
    cam = Camera(torch.eye(4), torch.tensor([100.0, 120.0, 64.0, 32.0]), 128, 64)
    small = cam.resized(16, 8)
    assert (small.width, small.height) == (16, 8)
    assert torch.allclose(small.intrinsics, torch.tensor([12.5, 15.0, 8.0, 4.0]))


def test_rays_match_pixel_rays_and_centre_ray_is_forward():
    cam = Camera.look_at([0.5, 0.2, -1.0], [0.0, 0.0, 2.0], width=9, height=7)
    origins, dirs = cam.rays()
    ref_o, ref_d = pixel_rays(cam.c2w, cam.intrinsics, 9, 7)
    assert torch.equal(origins, ref_o) and torch.equal(dirs, ref_d)
    assert torch.allclose(dirs[3, 4], cam.forward, atol=1e-6)
    assert cam.plucker().shape == (7, 9, 6)


def test_w2c_inverts_c2w():
    cams = Camera.stack([Camera.look_at([i, 1.0, -2.0], [0, 0, 1.0]) for i in range(3)])
    assert torch.allclose(cams.w2c() @ cams.c2w, torch.eye(4).expand(3, 4, 4), atol=1e-5)


def test_camera_rejects_bad_shapes_and_values():
    with pytest.raises(InputDataError, match="4, 4"):
        Camera(torch.eye(3), torch.ones(4), 8, 8)
    with pytest.raises(InputDataError, match="batch shapes"):
        Camera(torch.eye(4).expand(2, 4, 4), torch.ones(3, 4), 8, 8)
    with pytest.raises(InputDataError, match="NaN"):
        Camera(torch.full((4, 4), float("nan")), torch.ones(4), 8, 8)


def test_viser_round_trip_preserves_pose_and_fov():
    cam = Camera.look_at([1.0, -0.5, -2.0], [0.2, 0.1, 1.5], width=160, height=90, fov_y=math.radians(50))
    view = cam.to_viser()
    assert math.isclose(view["aspect"], 160 / 90)
    back = Camera.from_viser(wxyz=view["wxyz"], position=view["position"], fov=view["fov"], aspect=view["aspect"], height=90)
    assert back.width == 160
    assert torch.allclose(back.c2w, cam.c2w, atol=1e-6)
    assert torch.allclose(back.intrinsics, cam.intrinsics, atol=1e-4)


def test_from_viser_reads_a_camera_handle_with_opencv_axes():
    # viser: wxyz is the camera-to-world rotation; the camera looks along its +z, up is -y.
    # A 90 degree turn about world y maps camera +z to world +x.
    half = math.sqrt(0.5)
    handle = types.SimpleNamespace(wxyz=np.array([half, 0.0, half, 0.0]), position=np.array([1.0, 2.0, 3.0]), fov=math.radians(60), aspect=2.0)
    cam = Camera.from_viser(handle, height=50)
    assert (cam.width, cam.height) == (100, 50)
    assert torch.allclose(cam.forward, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)
    assert torch.allclose(cam.position, torch.tensor([1.0, 2.0, 3.0]))
    assert math.isclose(float(cam.intrinsics[1]), 25 / math.tan(math.radians(30)), rel_tol=1e-5)


def test_viser_conversion_agrees_with_viser_so3():
    from viser import transforms as tf

    cam = Camera.look_at([0.3, -1.0, -2.0], [0.0, 0.0, 1.0])
    view = cam.to_viser()
    assert np.allclose(tf.SO3(view["wxyz"]).as_matrix(), cam.c2w[:3, :3].numpy(), atol=1e-6)


def test_indexing_and_len_follow_the_batch():
    cams = Camera.stack([Camera.look_at([i, 0.0, -1.0], [0, 0, 1.0]) for i in range(4)])
    assert len(cams) == 4 and cams[1:3].batch_shape == (2,)
    assert torch.allclose(cams[2].position, torch.tensor([2.0, 0.0, -1.0]))

"""``lyra mesh --from-depth``: TSDF fusion of depth maps rendered around the scene (lyra.render.depth_fusion)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lyra.render.depth_fusion import fusion_cameras, mesh_from_depth
from lyra.render.framing import frame_scene
from lyra.scene.procedural import sphere

GREY = lambda p: torch.full_like(p, 0.5)  # noqa: E731


def test_fusion_cameras_look_from_above_and_below():
    g = sphere(torch.zeros(3), 1.0, 500, GREY)
    cameras = fusion_cameras(g, views=6, size=32)
    heights = cameras.position.double() @ frame_scene(g).up  # along the framing's up
    assert len(heights) == 6
    assert (heights > 0.3).sum() == 3 and (heights < -0.3).sum() == 3


@pytest.mark.slow
def test_fused_mesh_of_a_sphere_is_close_to_it_and_closed():
    g = sphere(torch.zeros(3), 1.0, 3000, GREY)
    mesh = mesh_from_depth(g, resolution=48, views=8, size=96)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 1.0).mean() < 0.05 and np.abs(radii - 1.0).max() < 0.15
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * math.pi, rel=0.2)
    assert (np.abs(np.asarray(mesh.visual.vertex_colors)[:, :3].astype(int) - 128) <= 1).all()  # grey splats: grey

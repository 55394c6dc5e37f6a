"""The buffer packer against viser 1.1.1's own conversion."""

from __future__ import annotations

import numpy as np
from viser._scene_handles import GaussianSplatHandle

from viewer.splat_buffer import pack_gaussians, tint_rgba_words, unpack_centers


def viser_buffer(g) -> np.ndarray:
    """What viser's set_gaussians builds from the same Gaussians (its static packers, in its order)."""
    buffer = np.zeros((len(g), 8), dtype=np.uint32)
    GaussianSplatHandle._pack_centers(buffer, g.means.numpy())
    GaussianSplatHandle._pack_covariances(buffer, g.covariances().numpy())
    GaussianSplatHandle._pack_rgba(buffer, rgbs=g.rgb().numpy(), opacities=g.opacities.numpy()[:, None])
    return buffer


def test_centers_and_colors_are_byte_identical_to_viser(make_gaussians):
    g = make_gaussians(2000)
    ours, theirs = pack_gaussians(g), viser_buffer(g)
    assert ours.dtype == np.uint32 and ours.shape == (2000, 8)
    np.testing.assert_array_equal(ours[:, 0:4], theirs[:, 0:4])
    np.testing.assert_array_equal(ours[:, 7], theirs[:, 7])


def test_covariances_match_viser_within_float16_rounding(make_gaussians):
    g = make_gaussians(2000)
    ours = pack_gaussians(g)[:, 4:7].copy().view(np.float16).astype(np.float32)
    theirs = viser_buffer(g)[:, 4:7].copy().view(np.float16).astype(np.float32)
    # one float16 ulp at the magnitude of each entry (relative 2^-10), plus an absolute floor for tiny values
    np.testing.assert_allclose(ours, theirs, rtol=2**-10, atol=1e-7)
    assert (ours == theirs).mean() > 0.95


def test_centers_round_trip_through_the_buffer(make_gaussians):
    g = make_gaussians(50)
    np.testing.assert_array_equal(unpack_centers(pack_gaussians(g)), g.means.numpy())


def test_tint_moves_rgb_toward_tint_and_keeps_alpha():
    words = np.array([[0, 0, 0, 77]], dtype=np.uint8).view(np.uint32).reshape(-1)
    tinted = tint_rgba_words(words, (200, 100, 50), strength=0.5).view(np.uint8)
    np.testing.assert_array_equal(tinted, [100, 50, 25, 77])

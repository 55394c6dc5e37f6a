"""Behaviour of the Gaussians scene model and GaussianSequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from lyra.errors import InvalidGaussiansError
from lyra.scene import Gaussians, GaussianSequence, quats_to_rotmats, rotmats_to_quats


def test_boolean_mask_selects_matching_rows(gaussians_factory):
    g = gaussians_factory(10)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4, 7]] = True
    sub = g[mask]
    assert len(sub) == 3
    assert torch.equal(sub.means, g.means[[1, 4, 7]])
    assert torch.equal(sub.sh, g.sh[[1, 4, 7]])


def test_index_list_selects_in_given_order(gaussians_factory):
    g = gaussians_factory(10)
    sub = g[[5, 2]]
    assert torch.equal(sub.opacities, g.opacities[[5, 2]])


def test_wrong_length_mask_raises(gaussians_factory):
    g = gaussians_factory(10)
    with pytest.raises(InvalidGaussiansError, match="mask"):
        g[torch.ones(9, dtype=torch.bool)]


def test_cat_raises_sh_degree_to_highest_with_zero_bands(gaussians_factory):
    low, high = gaussians_factory(4, sh_degree=0), gaussians_factory(6, sh_degree=2, seed=1)
    both = Gaussians.cat([low, high])
    assert len(both) == 10 and both.sh_degree == 2
    assert torch.equal(both.sh[:4, 0], low.sh[:, 0])
    assert torch.count_nonzero(both.sh[:4, 1:]) == 0
    assert torch.equal(both.sh[4:], high.sh)


def test_with_sh_degree_truncates_and_pads(gaussians_factory):
    g = gaussians_factory(5, sh_degree=3)
    assert torch.equal(g.with_sh_degree(1).sh, g.sh[:, :4])
    padded = g.with_sh_degree(1).with_sh_degree(3)
    assert padded.sh.shape == (5, 16, 3)
    assert torch.count_nonzero(padded.sh[:, 4:]) == 0


def test_covariances_match_explicit_r_s_s_rt(gaussians_factory):
    g = gaussians_factory(8)
    q = g.quats.double().numpy()
    rot = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()  # scipy wants (x, y, z, w)
    s = np.stack([np.diag(v) for v in g.scales.double().numpy()])
    expected = rot @ s @ s @ rot.transpose(0, 2, 1)
    np.testing.assert_allclose(g.covariances().double().numpy(), expected, atol=1e-6)


def test_quats_to_rotmats_matches_scipy(gaussians_factory):
    q = gaussians_factory(8).quats
    expected = Rotation.from_quat(q.double().numpy()[:, [1, 2, 3, 0]]).as_matrix()
    np.testing.assert_allclose(quats_to_rotmats(q).double().numpy(), expected, atol=1e-6)


def test_rotmats_to_quats_round_trips_up_to_sign(gaussians_factory):
    q = torch.nn.functional.normalize(gaussians_factory(32).quats.double(), dim=1)
    back = rotmats_to_quats(quats_to_rotmats(q))
    sign = torch.sign((back * q).sum(-1, keepdim=True))
    torch.testing.assert_close(back * sign, q, atol=1e-9, rtol=0)


def test_mismatched_shapes_raise(gaussians_factory):
    g = gaussians_factory(4)
    with pytest.raises(InvalidGaussiansError, match="quats"):
        g.replace(quats=torch.zeros(3, 4))


def test_non_square_sh_count_raises(gaussians_factory):
    g = gaussians_factory(4)
    with pytest.raises(InvalidGaussiansError):
        g.replace(sh=torch.zeros(4, 5, 3))


def test_validate_rejects_logit_opacities(gaussians_factory):
    g = gaussians_factory(4)
    with pytest.raises(InvalidGaussiansError, match="opacities"):
        g.replace(opacities=torch.tensor([-1.0, 0.5, 0.5, 0.5])).validate()


def test_validate_rejects_nan_and_zero_quaternions(gaussians_factory):
    g = gaussians_factory(4)
    quats = g.quats.clone()
    quats[2] = 0
    with pytest.raises(InvalidGaussiansError, match="1 of 4"):
        g.replace(quats=quats).validate()


def test_sequence_nearest_time_ties_go_to_earlier_frame(gaussians_factory):
    seq = GaussianSequence([gaussians_factory(2, seed=i) for i in range(3)], times=[0.0, 1.0, 2.0])
    assert seq.index_at_time(-5) == 0
    assert seq.index_at_time(0.4) == 0
    assert seq.index_at_time(0.5) == 0
    assert seq.index_at_time(0.6) == 1
    assert seq.index_at_time(9) == 2
    assert seq.frame_at_time(1.9) is seq.frames[2]


def test_sequence_rejects_non_increasing_times(gaussians_factory):
    with pytest.raises(InvalidGaussiansError, match="increasing"):
        GaussianSequence([gaussians_factory(2), gaussians_factory(2)], times=[1.0, 1.0])

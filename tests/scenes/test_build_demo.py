"""The demo scenes: deterministic, the promised sizes and content, valid, and cached on disk."""

from __future__ import annotations

import pytest
import torch

from lyra.edit.floaters import floater_mask
from lyra.scene import Gaussians, GaussianSequence, load
from scenes.build_demo import (
    DEMO_FPS,
    build_dynamic_demo,
    build_static_demo,
    demo_paths,
    ensure_demo_scenes,
)


@pytest.fixture(scope="module")
def static_demo() -> Gaussians:
    return build_static_demo()


@pytest.fixture(scope="module")
def dynamic_demo() -> GaussianSequence:
    return build_dynamic_demo()


def test_static_demo_is_identical_for_the_same_seed(static_demo):
    again = build_static_demo()
    assert all(
        torch.equal(getattr(again, f), getattr(static_demo, f)) for f in ("means", "quats", "scales", "opacities", "sh")
    )


def test_static_demo_differs_for_another_seed(static_demo):
    assert not torch.equal(build_static_demo(seed=1).means, static_demo.means)


def test_dynamic_demo_is_identical_for_the_same_seed(dynamic_demo):
    again = build_dynamic_demo()
    assert len(again) == len(dynamic_demo)
    assert all(a.equal(b) for a, b in zip(again, dynamic_demo, strict=True))


def test_static_demo_has_30k_to_60k_valid_splats(static_demo):
    static_demo.validate()
    assert 30_000 <= len(static_demo) <= 60_000


def test_static_demo_ground_is_y0_and_up_is_minus_y(static_demo):
    on_ground = static_demo.means[:, 1].abs() < 1e-5
    assert int(on_ground.sum()) >= 10_000
    assert float(static_demo.means[:, 1].max()) <= 1e-5  # everything else stands at y < 0 (above the ground)
    assert float(static_demo.means[:, 1].min()) < -0.5


def test_static_demo_is_about_unit_size_around_the_origin(static_demo):
    core = static_demo.means[static_demo.means.norm(dim=-1) < 1.4]
    assert float(core[:, [0, 2]].abs().max()) <= 1.25
    assert torch.allclose(core[:, [0, 2]].mean(0), torch.zeros(2), atol=0.15)


def test_static_demo_has_view_dependent_sheen(static_demo):
    assert static_demo.sh_degree >= 1
    with_sheen = static_demo.sh[:, 1:].abs().amax(dim=(1, 2)) > 0.1
    assert int(with_sheen.sum()) >= 1000


def test_static_demo_floaters_are_found_by_floater_mask(static_demo):
    flagged = floater_mask(static_demo.means)
    assert int(flagged.sum()) >= 50
    assert bool((static_demo.means[flagged].norm(dim=-1) > 1.4).all())


def test_dynamic_demo_has_at_least_24_frames_at_24_fps(dynamic_demo):
    assert len(dynamic_demo) >= 24
    assert dynamic_demo.fps == DEMO_FPS == 24.0


def test_dynamic_frames_are_valid_with_10k_to_20k_splats(dynamic_demo):
    for frame in dynamic_demo:
        frame.validate()
        assert 10_000 <= len(frame) <= 20_000


def test_dynamic_splat_count_grows_with_the_crystal(dynamic_demo):
    counts = dynamic_demo.num_gaussians
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False))


def _ball_top(frame: Gaussians) -> float:
    """Height (up is -y) of the highest splat in the ball's column (x < -0.3, z < 0)."""
    column = (frame.means[:, 0] < -0.3) & (frame.means[:, 2] < 0)
    return float(-frame.means[column, 1].min())


def test_dynamic_ball_bounces(dynamic_demo):
    half = len(dynamic_demo) // 2
    assert _ball_top(dynamic_demo[half]) - _ball_top(dynamic_demo[0]) > 0.4


def test_dynamic_windmill_turns(dynamic_demo):
    def red_blade_direction(frame: Gaussians) -> torch.Tensor:
        rgb = frame.rgb()
        red = (rgb[:, 0] > 0.3) & (rgb[:, 1] < 0.15) & (frame.means[:, 0] > 0.2)
        return frame.means[red].mean(0)

    assert (red_blade_direction(dynamic_demo[0]) - red_blade_direction(dynamic_demo[6])).norm() > 0.03


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """A cache folder after one ensure_demo_scenes call, with the returned paths."""
    cache_dir = tmp_path_factory.mktemp("demo_cache")
    return cache_dir, ensure_demo_scenes(cache_dir)


def test_ensure_demo_scenes_returns_the_cache_paths(demo_cache):
    cache_dir, paths = demo_cache
    assert paths == demo_paths(cache_dir)
    assert paths[0].is_file() and paths[1].is_dir()


def test_cached_static_demo_loads_back_equal(demo_cache, static_demo):
    loaded = load(demo_cache[1][0])
    assert loaded.equal(static_demo, atol=1e-4)


def test_cached_dynamic_demo_loads_back_equal(demo_cache, dynamic_demo):
    sequence = load(demo_cache[1][1])
    assert isinstance(sequence, GaussianSequence)
    assert sequence.num_gaussians == dynamic_demo.num_gaussians
    assert sequence.fps == dynamic_demo.fps
    assert sequence[5].equal(dynamic_demo[5], atol=1e-4)


def test_ensure_demo_scenes_reuses_the_cache(demo_cache):
    cache_dir, (static_path, dynamic_path) = demo_cache
    stamps = (static_path.stat().st_mtime_ns, dynamic_path.stat().st_mtime_ns)
    assert ensure_demo_scenes(cache_dir) == (static_path, dynamic_path)
    assert (static_path.stat().st_mtime_ns, dynamic_path.stat().st_mtime_ns) == stamps


def test_ensure_demo_scenes_rebuilds_a_missing_scene(demo_cache):
    cache_dir, (static_path, dynamic_path) = demo_cache
    dynamic_stamp = dynamic_path.stat().st_mtime_ns
    static_path.unlink()
    ensure_demo_scenes(cache_dir)
    assert static_path.is_file()
    assert dynamic_path.stat().st_mtime_ns == dynamic_stamp

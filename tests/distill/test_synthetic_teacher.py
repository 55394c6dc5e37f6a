"""The synthetic teacher: known geometry, Lyra trajectories, informative tiny tokenizer latents."""

import torch

from lyra.render import LYRA_TRAJECTORY_INDEX
from lyra.teacher.synthetic import random_scene, synthetic_scene, tiny_random_tokenizer


def test_scene_is_seeded_and_in_front_of_the_first_camera():
    a, b = random_scene(3), random_scene(3)
    assert torch.equal(a.means, b.means) and not torch.equal(a.means, random_scene(4).means)
    assert (a.means[:, 2] > 0.3).all() and (a.means[:, 2] < 2.5).all()  # OpenCV: z forward


def test_trajectories_render_the_scene_with_true_depth():
    vae = tiny_random_tokenizer()
    scene = synthetic_scene(3, vae, latent_frames=2, width=48, height=32, trajectories=("left", "zoom_in"))
    left, zoom = scene.trajectories
    assert left.frames.shape == (9, 32, 48, 3) and left.frames.dtype == torch.uint8
    assert left.latents.shape == (16, 2, 4, 6)
    assert torch.allclose(left.camera.c2w[0], torch.eye(4), atol=1e-6)  # Lyra trajectories start at the origin
    assert left.camera.c2w[-1, 0, 3] < -0.1 and zoom.camera.c2w[-1, 2, 3] > 0.2  # left moves -x, zoom_in +z
    # depth: the scene is between the nearest and the farthest true surface point (the wall at z = 2.2)
    hit = left.depth[0] > 0
    assert hit.float().mean() > 0.9
    assert left.depth[0][hit].max() <= scene.points[:, 2].max() + 0.05
    assert left.depth[0][hit].min() >= scene.points[:, 2].min() - 0.05
    assert LYRA_TRAJECTORY_INDEX[0] == "left"


def test_tiny_tokenizer_latents_carry_the_colours():
    vae = tiny_random_tokenizer()
    trajectories = [synthetic_scene(s, vae, width=48, height=32, trajectories=("left",)).trajectories[0] for s in range(4)]
    x = torch.cat([t.latents[:, 0].reshape(16, -1).T for t in trajectories])  # first latent frame = frame 0
    y = torch.cat([
        torch.nn.functional.avg_pool2d(t.frames[0].permute(2, 0, 1).float() / 255, 8).reshape(3, -1).T
        for t in trajectories
    ])
    x1 = torch.cat([x, torch.ones(len(x), 1)], 1)
    fit = torch.linalg.lstsq(x1, y).solution
    r2 = 1 - ((x1 @ fit - y) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)
    assert (r2 > 0.95).all()  # a linear read-out recovers each 8x8 block's mean colour
    assert 0.1 < x.std(0).mean() < 3  # stored (normalised) latents are well scaled


def test_synthetic_teacher_follows_the_teacher_protocol_and_make_datas_units_match_it():
    """Issue 17: every teacher behind one protocol; make-data's per-trajectory units are what generate() gives."""
    from lyra.render import lyra_trajectory
    from lyra.teacher.base import Teacher
    from lyra.teacher.synthetic import SyntheticTeacher

    vae = tiny_random_tokenizer()
    teacher = SyntheticTeacher(vae, 48, 32, latent_frames=2, scene_seed=3)
    assert isinstance(teacher, Teacher)
    cams = lyra_trajectory("zoom_in", 9, width=48, height=32)
    out = teacher.generate(None, [cams], names=["mine"])
    assert len(out) == 1 and out.trajectories[0].name == "mine" and out.trajectories[0].frames.shape == (9, 32, 48, 3)
    assert torch.equal(out.trajectories[0].camera.c2w, cams.c2w)
    reference = synthetic_scene(3, vae, latent_frames=2, width=48, height=32, trajectories=("zoom_in",),
                                trajectory_seed=LYRA_TRAJECTORY_INDEX.index("zoom_in")).trajectories[0]
    unit = teacher.trajectory("3", "zoom_in")
    assert torch.equal(unit.frames, reference.frames) and torch.equal(unit.latents, reference.latents)
    assert torch.equal(unit.depth, reference.depth)

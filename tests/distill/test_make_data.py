"""make-data: rank sharding and resume (finished trajectory folders are skipped)."""

import torch

from lyra.distill.make_data import Unit, is_finished, run_units, shard, trajectory_folder
from lyra.render import lyra_trajectory
from lyra.teacher.base import TrajectoryOutput


class FakeTeacher:
    """Satisfies the make-data protocol; counts what it was asked for."""

    def __init__(self):
        self.calls = []

    def trajectory(self, source: str, index: int) -> TrajectoryOutput:
        self.calls.append((source, index))
        cams = lyra_trajectory("left", 9, width=32, height=16)
        frames = torch.full((9, 16, 32, 3), 10 * index, dtype=torch.uint8)
        return TrajectoryOutput("left", frames, torch.zeros(16, 2, 2, 4), cams, torch.ones(9, 16, 32))


def _units():
    return [Unit("train", f"scene_{s}", str(s), i) for s in range(3) for i in range(2)]


def test_ranks_split_the_work_exactly_once():
    units = _units()
    parts = [shard(units, r, 4) for r in range(4)]
    assert sorted(u for p in parts for u in p) == sorted(units)
    assert sum(len(p) for p in parts) == len(units)


def test_two_ranks_make_everything_and_a_rerun_makes_nothing(tmp_path):
    units, teacher = _units(), FakeTeacher()
    make = lambda u: teacher.trajectory(u.source, u.index)  # noqa: E731
    made = run_units(tmp_path, units, make, rank=0, world=2) + run_units(tmp_path, units, make, rank=1, world=2)
    assert sorted(made) == sorted(units)
    assert all(is_finished(trajectory_folder(tmp_path, u), u.scene) for u in units)
    assert run_units(tmp_path, units, make, rank=0, world=1) == []
    assert len(teacher.calls) == len(units)


def test_resume_redoes_only_unfinished_folders(tmp_path):
    units, teacher = _units(), FakeTeacher()
    make = lambda u: teacher.trajectory(u.source, u.index)  # noqa: E731
    run_units(tmp_path, units, make)
    victim = units[3]
    (trajectory_folder(tmp_path, victim) / "depth" / f"{victim.scene}.zip").unlink()  # killed before the last file
    assert run_units(tmp_path, units, make) == [victim]


class FakeGen3C:
    """Follows lyra.teacher.base.Teacher: returns the input image repeated along the cameras."""

    def __init__(self):
        self.calls = 0

    def generate(self, image, trajectories, *, depth=None, intrinsics=None, names=None, progress=None):
        from lyra.teacher.base import TeacherOutput

        self.calls += 1
        cam = trajectories[0]
        frames = image[None].expand(cam.batch_shape[0], -1, -1, -1).contiguous()
        latents = torch.zeros(16, (cam.batch_shape[0] - 1) // 8 + 1, cam.height // 8, cam.width // 8)
        return TeacherOutput([TrajectoryOutput(names[0], frames, latents, cam, depth[None].expand(len(frames), -1, -1))])


def test_gen3c_data_shards_images_and_resumes(tmp_path):
    import imageio.v3 as iio
    import numpy as np

    from lyra.distill.data import SDGDataset
    from lyra.distill.gen3c_data import make_gen3c_data
    from lyra.pipeline.generate import GenerateSettings
    from lyra.teacher.base import Teacher

    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir(), depths.mkdir()
    for i in range(3):
        iio.imwrite(images / f"img{i}.png", np.full((32, 48, 3), 40 * i, np.uint8))
        np.save(depths / f"img{i}.npy", np.full((32, 48), 2.0, np.float32))
    settings = GenerateSettings(trajectories=["left", "zoom_in"], num_frames=9, width=48, height=32)
    teacher = FakeGen3C()
    assert isinstance(teacher, Teacher)
    kwargs = dict(settings=settings, teacher=teacher, depth_dir=depths)
    made = [make_gen3c_data(images, tmp_path / "out", rank=r, world=2, **kwargs) for r in (0, 1)]
    assert sorted(len(m) for m in made) == [3, 3] and teacher.calls == 6
    assert make_gen3c_data(images, tmp_path / "out", rank=0, world=1, **kwargs) == []  # all finished
    ds = SDGDataset(tmp_path / "out" / "train")
    assert [p.name for p in ds.scenes] == ["img0", "img1", "img2"]
    assert [t.name for t in ds.trajectories[0]] == ["0", "4"]  # Lyra trajectory indices

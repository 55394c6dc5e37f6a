"""The teaching engine (lyra.pipeline.teach) as make-data uses it: round-robin sharding, one finished rule, resume."""

import torch

from lyra.pipeline.teach import STAGE_FILE, Unit, is_finished, shard, teach
from lyra.render import lyra_trajectory
from lyra.teacher.base import TrajectoryOutput


class FakeTeacher:
    """Makes one small trajectory per unit; counts what it was asked for."""

    def __init__(self):
        self.calls = []

    def trajectory(self, unit: Unit) -> TrajectoryOutput:
        self.calls.append(unit)
        cams = lyra_trajectory("left", 9, width=32, height=16)
        frames = torch.full((9, 16, 32, 3), 10 * len(self.calls), dtype=torch.uint8)
        return TrajectoryOutput("left", frames, torch.zeros(16, 2, 2, 4), cams, torch.ones(9, 16, 32))


def _units(root):
    return [Unit(str(root / "train" / f"scene_{s}" / str(i)), f"scene_{s}", "left", str(s), f"key-{s}-{i}")
            for s in range(3) for i in range(2)]


def test_ranks_split_the_work_round_robin_exactly_once(tmp_path):
    units = _units(tmp_path)
    parts = [shard(units, r, 4) for r in range(4)]
    assert parts[1] == [units[1], units[5]]  # rank r takes units r, r + W, ...
    assert sorted(u.folder for p in parts for u in p) == sorted(u.folder for u in units)


def test_two_ranks_make_everything_and_a_rerun_makes_nothing(tmp_path):
    units, teacher = _units(tmp_path), FakeTeacher()
    make = lambda u, step: teacher.trajectory(u)  # noqa: E731
    made = teach(units, make, rank=0, world=2) + teach(units, make, rank=1, world=2)
    assert sorted(u.folder for u in made) == sorted(u.folder for u in units)
    assert all(is_finished(u.folder, u.key) for u in units)
    assert teach(units, make, rank=0, world=1) == []
    assert len(teacher.calls) == len(units)


def test_resume_redoes_only_unfinished_or_changed_folders(tmp_path):
    units, teacher = _units(tmp_path), FakeTeacher()
    make = lambda u, step: teacher.trajectory(u)  # noqa: E731
    teach(units, make)
    victim = units[3]
    (tmp_path / "train" / victim.name / "1" / STAGE_FILE).unlink()  # as if killed before the folder was finished
    assert teach(units, make) == [victim]
    changed = [Unit(u.folder, u.name, u.trajectory, u.source, u.key + "-other-teacher") if u is units[0] else u
               for u in units]
    assert [u.folder for u in teach(changed, make)] == [units[0].folder]  # another key (teacher, seed, ...) remakes


def test_a_failing_teacher_leaves_no_half_written_folder(tmp_path):
    units = _units(tmp_path)

    def broken(unit, step):
        raise RuntimeError("out of memory")

    try:
        teach(units[:1], broken)
    except RuntimeError:
        pass
    assert not (tmp_path / "train").exists() or not any((tmp_path / "train").rglob("*.pkl"))


class FakeGen3C:
    """Follows lyra.teacher.base.Teacher: returns the input image repeated along the cameras."""

    def __init__(self):
        self.calls = 0
        self.identity = {"class": "FakeGen3C"}

    def generate(self, image, trajectories, *, depth=None, intrinsics=None, names=None, progress=None):
        from lyra.teacher.base import TeacherOutput

        self.calls += 1
        cam = trajectories[0]
        frames = image[None].expand(cam.batch_shape[0], -1, -1, -1).contiguous()
        latents = torch.zeros(16, (cam.batch_shape[0] - 1) // 8 + 1, cam.height // 8, cam.width // 8)
        return TeacherOutput([TrajectoryOutput(names[0], frames, latents, cam, depth[None].expand(len(frames), -1, -1))])


def test_gen3c_data_builds_one_request_per_image_shards_and_resumes(tmp_path):
    import imageio.v3 as iio
    import numpy as np

    from lyra.distill.data import SDGDataset
    from lyra.distill.gen3c_data import image_requests, make_gen3c_data
    from lyra.pipeline.request import GenerateRequest
    from lyra.teacher.base import Teacher

    images, depths = tmp_path / "images", tmp_path / "depth"
    images.mkdir(), depths.mkdir()
    for i in range(3):
        iio.imwrite(images / f"img{i}.png", np.full((32, 48, 3), 40 * i, np.uint8))
        np.save(depths / f"img{i}.npy", np.full((32, 48), 2.0, np.float32))
    template = GenerateRequest(input=str(images), backend="lyra", trajectories=["left", "zoom_in"], num_frames=9,
                               size=(48, 32), depth_units=5000.0)
    requests = image_requests(images, template, depths)
    assert [r.input for r in requests] == [str(images / f"img{i}.png") for i in range(3)]
    assert requests[1].depth == str(depths / "img1.npy") and requests[1].depth_units == 5000.0
    teacher = FakeGen3C()
    assert isinstance(teacher, Teacher)
    kwargs = dict(request=template, teacher=teacher, depth_dir=depths)
    made = [make_gen3c_data(images, tmp_path / "out", rank=r, world=2, **kwargs) for r in (0, 1)]
    assert sorted(len(m) for m in made) == [3, 3] and teacher.calls == 6
    assert made[0][0].folder.endswith("img0/0") and made[1][0].folder.endswith("img0/4")  # round-robin
    assert make_gen3c_data(images, tmp_path / "out", rank=0, world=1, **kwargs) == []  # all finished
    ds = SDGDataset(tmp_path / "out" / "train")
    assert [p.name for p in ds.scenes] == ["img0", "img1", "img2"]
    assert [t.name for t in ds.trajectories[0]] == ["0", "4"]  # Lyra trajectory indices

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

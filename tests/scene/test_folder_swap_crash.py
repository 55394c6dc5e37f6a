"""Issue 20 §3.6: a writer SIGKILLed in the middle of a folder swap loses nothing.

A child process replaces a folder with :func:`lyra.fileio.atomic_directory` and
is killed (SIGKILL, so no cleanup runs) at each step of the swap; the next save
into that folder, or the next open of the folder, must bring back what was set
aside and never delete it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lyra.fileio import atomic_directory, clean_stale_temporaries, recover_set_aside
from lyra.model.checkpoint import load_decoder, save_decoder
from lyra.scene import Gaussians, GaussianSequence, load, save

ROOT = Path(__file__).resolve().parents[2]

# A: killed just before the old folder steps aside; B: between the aside and the new folder's
# arrival (the name is missing); C: just after the new folder arrived (the old one not yet deleted).
CHILD = textwrap.dedent("""
    import os, signal, sys
    from lyra.fileio import atomic_directory

    target, state = sys.argv[1], sys.argv[2]
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if (state == "A" and os.fspath(src) == target) or (state == "B" and os.fspath(dst) == target):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst, *args, **kwargs)
        if state == "C" and os.fspath(dst) == target:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    with atomic_directory(target) as tmp:
        (tmp / "marker.txt").write_text("new")
""")


def crash_while_replacing(target: Path, state: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", CHILD, str(target), state], env=env, timeout=120,
                            capture_output=True)
    assert result.returncode == -9, result.stderr.decode()[-2000:]  # really killed mid-swap


def clip(n: int) -> GaussianSequence:
    def frame(seed: int) -> Gaussians:
        gen = torch.Generator().manual_seed(seed)
        return Gaussians.from_rgb(torch.rand(n, 3, generator=gen), torch.randn(n, 4, generator=gen),
                                  torch.rand(n, 3, generator=gen) * 0.05 + 0.01, torch.rand(n, generator=gen),
                                  torch.rand(n, 3, generator=gen))
    return GaussianSequence([frame(0), frame(1)], fps=4)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".lyra-" in p.name)


@pytest.mark.slow
def test_killed_between_the_renames_the_next_open_restores_the_previous_folder(tmp_path):
    save(clip(30), tmp_path / "seq")
    crash_while_replacing(tmp_path / "seq", "B")
    assert not (tmp_path / "seq").exists()  # the crash state the hostile tester found
    loaded = load(tmp_path / "seq")
    assert loaded.num_gaussians == [30, 30]
    assert not any(name.endswith(".old") for name in leftovers(tmp_path))


@pytest.mark.slow
def test_killed_between_the_renames_the_next_save_restores_it_and_deletes_nothing(tmp_path):
    save(clip(30), tmp_path / "seq")
    crash_while_replacing(tmp_path / "seq", "B")
    save(clip(12), tmp_path / "other")  # any save into the folder cleans up: the old copy comes back first
    assert load(tmp_path / "seq").num_gaussians == [30, 30]
    save(clip(12), tmp_path / "seq")  # and the save of seq itself then replaces it normally
    assert load(tmp_path / "seq").num_gaussians == [12, 12]
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_killed_before_the_aside_or_after_the_arrival_one_complete_folder_remains(tmp_path):
    save(clip(30), tmp_path / "before")
    crash_while_replacing(tmp_path / "before", "A")
    assert load(tmp_path / "before").num_gaussians == [30, 30]
    save(clip(30), tmp_path / "after")
    crash_while_replacing(tmp_path / "after", "C")
    assert (tmp_path / "after" / "marker.txt").read_text() == "new"  # the new folder is in place
    assert any(name.endswith(".old") for name in leftovers(tmp_path))
    clean_stale_temporaries(tmp_path)  # the next save's clean-up: the superseded old folder goes
    assert leftovers(tmp_path) == []
    assert (tmp_path / "after" / "marker.txt").read_text() == "new"


@pytest.mark.slow
def test_a_decoder_checkpoint_set_aside_by_a_killed_save_loads(tmp_path, make_tiny_decoder):
    model = make_tiny_decoder("static")
    save_decoder(model, tmp_path / "checkpoint")
    crash_while_replacing(tmp_path / "checkpoint", "B")
    loaded = load_decoder(tmp_path / "checkpoint")
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_folder_set_aside_by_an_older_version_comes_back_too(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has exited: its temporaries are abandoned
    aside = tmp_path / f".seq.lyra-{pid}.abc123.old" / "previous"
    aside.mkdir(parents=True)
    (aside / "manifest.json").write_text("{}")
    assert recover_set_aside(tmp_path / "seq")
    assert (tmp_path / "seq" / "manifest.json").read_text() == "{}"
    assert leftovers(tmp_path) == []


def test_a_live_writers_folder_set_aside_is_left_alone(tmp_path):
    with atomic_directory(tmp_path / "seq") as tmp:
        (tmp / "a").write_text("1")
    aside = tmp_path / f".seq.lyra-{os.getpid()}.abc123.old" / "seq"  # this process: a swap in progress
    aside.mkdir(parents=True)
    os.rename(tmp_path / "seq", aside / "x")  # the name is missing while the live writer swaps
    assert not recover_set_aside(tmp_path / "seq")
    assert clean_stale_temporaries(tmp_path) == []
    assert (aside / "x" / "a").exists()

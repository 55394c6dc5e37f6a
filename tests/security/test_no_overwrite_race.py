"""Finding 4: "no overwrite" is an atomic create-if-absent; of several racing writers exactly one wins.

Checked through every route: renameat2(RENAME_NOREPLACE), the hard-link fallback,
the exclusive-reservation fallback, folders, threads and processes.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import threading

import pytest
import torch

from lyra import fileio
from lyra.errors import LyraError
from lyra.scene import load, save
from tests.security.conftest import tiny_gaussians

WRITERS = 8


def _race(target, fmt: str, writers: int = WRITERS) -> list:
    """``writers`` threads saving different scenes to ``target`` at once; returns each one's outcome."""
    barrier = threading.Barrier(writers)
    outcomes: list = [None] * writers

    def write(i: int) -> None:
        scene = tiny_gaussians(32 + i, seed=i)
        barrier.wait()
        try:
            save(scene, target, format=fmt, overwrite=False)
            outcomes[i] = "ok"
        except LyraError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def _check_one_winner(target, outcomes, sequence: bool = False) -> None:
    winners = [i for i, o in enumerate(outcomes) if o == "ok"]
    assert len(winners) == 1, outcomes
    losers = [o for o in outcomes if o != "ok"]
    assert all(isinstance(o, LyraError) and "exist" in str(o) for o in losers), losers
    back = load(target)
    frame = back.frames[0] if sequence else back
    assert len(frame) == 32 + winners[0]  # the file is the winner's, whole
    assert torch.allclose(frame.means, tiny_gaussians(32 + winners[0], seed=winners[0]).means)
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("route", ["renameat2", "hard link", "reservation"])
def test_racing_no_overwrite_file_writes_have_exactly_one_winner(tmp_path, monkeypatch, route):
    if route != "renameat2":
        monkeypatch.setattr(fileio, "_renameat2", None)
    if route == "reservation":
        def no_links(src, dst):
            raise OSError(errno.EPERM, "hard links not supported here")
        monkeypatch.setattr(fileio.os, "link", no_links)
    for trial in range(5):
        target = tmp_path / f"scene_{trial}.ply"
        _check_one_winner(target, _race(target, "ply"))


@pytest.mark.parametrize("route", ["renameat2", "mkdir reservation"])
def test_racing_no_overwrite_sequence_folders_have_exactly_one_winner(tmp_path, monkeypatch, route):
    if route != "renameat2":
        monkeypatch.setattr(fileio, "_renameat2", None)
    for trial in range(3):
        target = tmp_path / f"clip_{trial}"
        _check_one_winner(target, _race(target, "sequence"), sequence=True)


def _process_writer(args) -> str:
    target, seed, start = args
    scene = tiny_gaussians(32 + seed, seed=seed)
    start.wait()
    try:
        save(scene, target, format="splat", overwrite=False)
        return "ok"
    except LyraError as exc:
        return str(exc)


def test_racing_processes_have_exactly_one_winner(tmp_path):
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    target = tmp_path / "scene.splat"
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(4) as pool:
            pending = pool.map_async(_process_writer, [(target, i, start) for i in range(4)])
            start.set()
            outcomes = pending.get(60)
    assert outcomes.count("ok") == 1, outcomes
    assert all("exist" in o for o in outcomes if o != "ok")
    assert len(load(target)) in {32, 33, 34, 35}


def test_cli_convert_refuses_an_existing_target(tmp_path, capsys):
    from lyra.cli import main

    save(tiny_gaussians(8), tmp_path / "in.ply")
    (tmp_path / "out.ply").write_bytes(b"keep me")
    assert main(["convert", str(tmp_path / "in.ply"), str(tmp_path / "out.ply")]) == 1
    assert "exist" in capsys.readouterr().err
    assert (tmp_path / "out.ply").read_bytes() == b"keep me"

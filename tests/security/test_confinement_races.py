"""Issue 20 §3.2: what a client's paths can reach. The keyframed path JSON is confined like Open path, a
sequence's frames and a SOG's members cannot be symlinks out, a folder/symlink swap racing an open never
returns an outside file, and the Distill panel does not look above the served folders for a tokenizer."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import threading
import zipfile

import pytest

from lyra.errors import LyraError, SceneFileError
from lyra.render.paths import CameraPath
from lyra.scene import GaussianSequence, load, save
from tests.security.conftest import call_with_deadline, tiny_gaussians
from viewer.app import ViewerApp
from viewer.open_path import PathConfinement, read_camera_path

SECRET = "TOPSECRET-0123456789"
GOOD_PATH = {"keyframes": [{"position": [0, 0, -3], "look_at": [0, 0, 0]}, {"position": [1, 0, -3], "look_at": [0, 0, 0]}]}


@pytest.fixture
def served(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    return data, outside


# ----------------------------------------------------------------- keyframed path JSON
def test_keyframed_path_outside_reads_the_same_whether_it_exists_or_not(served):
    data, outside = served
    (outside / "secret.json").write_text(json.dumps({"keyframes": SECRET}))
    paths = PathConfinement([data])
    messages = []
    for raw in (str(outside / "secret.json"), str(outside / "missing.json"), str(data / ".." / "outside" / "secret.json")):
        with pytest.raises(LyraError) as info:
            read_camera_path(paths, raw)
        messages.append(str(info.value).replace(raw, "<path>"))
    assert len(set(messages)) == 1 and SECRET not in messages[0]


def test_keyframed_path_errors_never_quote_the_file(served):
    data, _ = served
    paths = PathConfinement([data])
    bad = {"not json": f"{SECRET} {{", "wrong shape": json.dumps({"keyframes": [SECRET]}),
           "bad numbers": json.dumps({"keyframes": [{"position": [SECRET, 0, 0], "look_at": [0, 0, 0]}]})}
    for name, text in bad.items():
        (data / f"{name}.json").write_text(text)
        with pytest.raises(LyraError) as info:
            read_camera_path(paths, str(data / f"{name}.json"))
        assert SECRET not in str(info.value) and "not one" in str(info.value), name


def test_keyframed_path_fifo_is_refused_before_opening(served):
    data, _ = served
    os.mkfifo(data / "pipe.json")
    outcome, value = call_with_deadline(lambda: read_camera_path(PathConfinement([data]), str(data / "pipe.json")),
                                        on_timeout=lambda: open(data / "pipe.json", "w").close())
    assert outcome == "raised" and isinstance(value, SceneFileError) and "FIFO" in str(value)


def test_keyframed_path_inside_is_read(served):
    data, _ = served
    (data / "path.json").write_text(json.dumps(GOOD_PATH))
    path = read_camera_path(PathConfinement([data]), str(data / "path.json"))
    assert isinstance(path, CameraPath) and len(path.keyframes) == 2


def test_the_render_panel_refuses_an_outside_json_without_starting_a_job(server, served, tmp_path):
    data, outside = served
    (outside / "secret.json").write_text(json.dumps({"keyframes": SECRET}))
    app = ViewerApp(server, output_dir=tmp_path / "out", data_dirs=[data])
    notes = []
    app.notify = lambda title, body, client=None, error=False: notes.append(f"{title}: {body}")
    try:
        panel = app.panel("render")
        panel.keyframes.value = str(outside / "secret.json")
        jobs_before = len(app.jobs)
        panel._render_video(type("Event", (), {"client": None})())
        assert len(app.jobs) == jobs_before
        assert len(notes) == 1 and "outside" in notes[0] and SECRET not in notes[0]
    finally:
        app.stop()
        server.gui.reset()
        server.scene.reset()


# ----------------------------------------------------------------- symlinks inside scenes
def test_a_sequence_frame_symlinked_outside_its_folder_is_refused(served):
    data, outside = served
    save(GaussianSequence([tiny_gaussians(8, seed=0), tiny_gaussians(8, seed=1)], fps=2), data / "seq")
    save(tiny_gaussians(99, seed=5), outside / "secret.ply")
    (data / "seq" / "frame_00001.ply").unlink()
    (data / "seq" / "frame_00001.ply").symlink_to(outside / "secret.ply")
    with pytest.raises(SceneFileError) as info:
        load(data / "seq").num_gaussians  # noqa: B018 - the headers are read at open
    assert "symbolic link" in str(info.value)


def test_a_sog_member_that_is_a_symlink_is_refused(served):
    data, outside = served
    save(tiny_gaussians(64, seed=2), data / "scene.sog")
    with zipfile.ZipFile(data / "scene.sog") as bundle:
        bundle.extractall(data / "sog")
        members = [n for n in bundle.namelist() if n != "meta.json"]
    shutil.copy(data / "sog" / members[0], outside / members[0])
    (data / "sog" / members[0]).unlink()
    (data / "sog" / members[0]).symlink_to(outside / members[0])
    with pytest.raises(SceneFileError) as info:
        load(data / "sog" / "meta.json")
    assert "symbolic link" in str(info.value)


# ----------------------------------------------------------------- the swap race
_RENAME_EXCHANGE = 2


def _exchange():
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if not hasattr(libc, "renameat2"):
        pytest.skip("no renameat2 in this libc")
    renameat2 = libc.renameat2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

    def exchange(a, b) -> None:
        if renameat2(-100, os.fsencode(a), -100, os.fsencode(b), _RENAME_EXCHANGE) != 0:
            code = ctypes.get_errno()
            if code in (errno.EINVAL, errno.ENOSYS):
                pytest.skip("RENAME_EXCHANGE is not supported on this file system")
            raise OSError(code, os.strerror(code))

    return exchange


@pytest.mark.slow
def test_a_folder_swapped_for_a_symlink_while_opening_never_yields_the_outside_file(served):
    data, outside = served
    exchange = _exchange()
    (data / "scenes").mkdir()
    save(tiny_gaussians(10, seed=0), data / "scenes" / "scene.ply")
    (outside / "scenes").mkdir()
    save(tiny_gaussians(77, seed=1), outside / "scenes" / "scene.ply")  # the outside file: 77 splats
    (data / "decoy").symlink_to(outside / "scenes")
    exchange(data / "scenes", data / "decoy")  # check once that the swap works here
    exchange(data / "scenes", data / "decoy")
    paths = PathConfinement([data])
    stop, swaps = threading.Event(), [0]

    def swapper() -> None:
        while not stop.is_set():
            exchange(data / "scenes", data / "decoy")  # data/scenes is now the folder, now a symlink out
            swaps[0] += 1
            stop.wait(0.0005 * (swaps[0] % 7))  # states that last a while: long enough for a whole load

    thread = threading.Thread(target=swapper, daemon=True)
    thread.start()
    outcomes = {"inside": 0, "refused": 0}
    try:
        for _ in range(300):
            try:
                path = paths.check(str(data / "scenes" / "scene.ply"))
                with paths.reads():
                    count = len(load(path))
            except SceneFileError:
                outcomes["refused"] += 1
                continue
            assert count == 10, "the outside file was read"
            outcomes["inside"] += 1
    finally:
        stop.set()
        thread.join(10)
    assert swaps[0] > 10 and outcomes["inside"] > 0 and outcomes["refused"] > 0, (swaps, outcomes)


# ----------------------------------------------------------------- the Distill tokenizer
def test_the_distill_tokenizer_is_not_looked_for_above_the_data_folder(server, tmp_path):
    root = tmp_path / "root"
    data = root / "data"
    (data / "eval").mkdir(parents=True)
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "config.json").write_text("{}")  # above the served folder
    app = ViewerApp(server, output_dir=tmp_path / "out", data_dirs=[data])
    try:
        panel = app.panel("distill")
        panel.checkpoint.value = str(data / "ckpt")
        panel.data.value = str(data)
        with pytest.raises(LyraError) as info:
            panel._request()
        assert "inside the folders this viewer serves" in str(info.value)
        (data / "tokenizer").mkdir()
        (data / "tokenizer" / "config.json").write_text("{}")
        assert panel._request()["tokenizer"] == (data / "tokenizer").resolve()
    finally:
        app.stop()
        server.gui.reset()
        server.scene.reset()

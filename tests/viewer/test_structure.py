"""The viewer's seams: panels registered in one list, talking to AppState's methods, jobs as progress callbacks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lyra.progress import Cancelled
from viewer.app import PANELS
from viewer.jobs import Job
from viewer.renders import render_path_video

PANEL_DIR = Path(__file__).resolve().parents[2] / "viewer" / "panels"


def test_every_panel_module_is_registered_once():
    modules = {p.stem for p in PANEL_DIR.glob("*.py") if p.stem != "__init__"}
    registered = [cls.__module__.rsplit(".", 1)[1] for _, _, cls in PANELS]
    assert sorted(registered) == sorted(modules)
    assert len({cls.key for _, _, cls in PANELS}) == len(PANELS)


@pytest.mark.parametrize("path", sorted(PANEL_DIR.glob("*.py")), ids=lambda p: p.stem)
def test_panels_use_state_methods_and_never_another_panels_widgets(path):
    source = path.read_text()
    assert not re.search(r"state\.(layers|lock|frame)\b", source), "panels use AppState's methods"
    assert not re.search(r"state\.history\b", source)
    assert not re.search(r"app\.panel\(|_panel\.", source), "panels do not reach into one another"
    assert not re.search(r"\b(app|state)\.\w+(\.\w+)*\s*=[^=]|setattr\((self\.)?(app|state)\b", source), \
        "panels call methods, never set attributes on the app or the state"


def test_a_job_is_a_progress_callback_that_raises_cancelled_once_cancelled():
    job = Job("j", lambda j: None)
    job(0.25, "a quarter")
    assert (job.fraction, job.text) == (0.25, "a quarter")
    job.cancel()
    with pytest.raises(Cancelled):
        job(0.5, "half")


def test_cancelling_a_video_job_leaves_no_file(sequence_state, tmp_path):
    target = tmp_path / "clip.mp4"
    job = Job("Render MP4", lambda j: render_path_video(sequence_state, "orbit", 6, 32, 32, target, progress=j))
    job.cancel()  # before the first frame is reported
    job.start()
    assert job.wait(30) and job.status == "cancelled"
    assert list(tmp_path.iterdir()) == []

"""`lyra train --view`: the student's scene and its renders beside the teacher's frames, kept after the run."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
import torch

from lyra.distill.live_view import LiveView, comparison_image
from lyra.distill.train import EvalPreview
from lyra.errors import InputDataError
from lyra.scene.synthetic import random_gaussians


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def preview(n_gaussians: int, views: int = 2, seed: int = 0) -> EvalPreview:
    target = torch.zeros(views, 8, 12, 3)
    target[..., 0] = 1.0  # the teacher's frames: red
    student = torch.zeros(views, 8, 12, 3)
    student[..., 2] = 1.0  # the student's renders: blue
    return EvalPreview(random_gaussians(n_gaussians, sh_degree=0, seed=seed), target, student)


@pytest.fixture
def view():
    view = LiveView(port=free_port())
    yield view
    view.server.stop()


def test_each_eval_replaces_the_served_scene(view):
    view(0, preview(50))
    first = view.handle
    view(10, preview(80, seed=1))
    assert view.handle is not first
    assert "step 10: 80 Gaussians" in view.label.content


def test_the_teachers_frames_show_beside_the_students_renders_from_the_same_cameras(view):
    view(0, preview(50, views=2))
    image = view.comparison.image  # uint8 [H, W, 3]
    height, width = image.shape[:2]
    left, right = image[height // 4, width // 4], image[height // 4, 3 * width // 4]
    assert tuple(left) == (255, 0, 0) and tuple(right) == (0, 0, 255)  # teacher left, student right
    # One row per target camera, separated by a white line; enlarged so the 12-pixel frames are visible.
    assert width >= 200 and height > width / 2
    assert (image[height // 2] == 255).all()
    assert "same camera" in view.caption.content


def test_comparison_refuses_frames_of_different_shapes():
    with pytest.raises(InputDataError, match="must both be"):
        comparison_image(torch.zeros(2, 8, 12, 3), torch.zeros(1, 8, 12, 3))
    assert comparison_image(torch.ones(1, 4, 6, 3), torch.zeros(1, 4, 6, 3), width=28).shape == (8, 28, 3)


def test_after_the_run_the_page_stays_up_on_the_final_checkpoint_until_stopped(view, tmp_path):
    view(80, preview(30))
    view.finish(tmp_path / "checkpoint")
    assert "Training finished at step 80" in view.label.content and str(tmp_path / "checkpoint") in view.label.content
    stop = threading.Event()
    serving = threading.Thread(target=view.serve_until_interrupted, args=(stop,))
    serving.start()
    time.sleep(0.3)
    assert serving.is_alive()
    url = f"http://127.0.0.1:{view.server.get_port()}"
    assert urllib.request.urlopen(url, timeout=30).status == 200  # still served after training ended
    stop.set()
    serving.join(30)
    assert not serving.is_alive()


@pytest.mark.slow
def test_train_view_shows_teacher_and_student_then_keeps_the_page_until_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env.update(LYRA_STUDIO_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen([sys.executable, "-m", "lyra", "train", "tiny-cpu-ci", "--out", str(tmp_path / "run"),
                             "--max-steps", "2", "--view", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            if "Ctrl-C to close" in line:
                break
        assert any("Ctrl-C to close" in line for line in lines), "".join(lines)[-3000:]
        time.sleep(1.0)
        assert proc.poll() is None  # the run is over, the page is not
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=30).status == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        assert (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_training_hands_the_live_view_teacher_frames_and_student_renders_of_one_shape(tmp_path, monkeypatch):
    import dataclasses

    from lyra.distill.config import load_config
    from lyra.distill.train import train

    monkeypatch.setenv("LYRA_STUDIO_CACHE", str(tmp_path / "cache"))
    config = load_config("tiny-cpu-ci")
    synthetic = dataclasses.replace(config.data.synthetic, train_scenes=2, eval_scenes=1)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, synthetic=synthetic))
    seen = []
    train(config, tmp_path / "run", max_steps=1, on_eval=lambda step, p: seen.append((step, p)))
    assert [step for step, _ in seen] == [0, 1]
    for _, shown in seen:
        assert shown.target_rgb.shape == shown.student_rgb.shape and shown.target_rgb.shape[-1] == 3
        assert len(shown.target_rgb) == config.eval.targets
        assert 0 <= float(shown.student_rgb.min()) and float(shown.student_rgb.max()) <= 1
        assert len(shown.gaussians) > 0
    assert not np.allclose(seen[0][1].target_rgb.numpy(), seen[0][1].student_rgb.numpy())

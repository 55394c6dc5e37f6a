"""``lyra train --view``: a viser page showing the student as it learns, refreshed at each eval.

Binds 127.0.0.1 only. After each evaluation the page shows, for the first held-out sample:

* the student's decoded scene in 3D (Gaussians relative to its first input camera, OpenCV frame: -y up);
* "teacher | student": each target frame of the teacher beside the student's render from the same
  camera (a small scene at low resolution is otherwise hard to judge from the 3D view alone).

When the run ends, :meth:`LiveView.finish` says so and names the final checkpoint (the scene shown is
the one the final evaluation decoded, i.e. that checkpoint's), and :meth:`LiveView.serve_until_interrupted`
keeps the page up until Ctrl-C.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from lyra.distill.train import EvalPreview
from lyra.errors import InputDataError

COMPARISON_WIDTH = 320  # pixels of one teacher | student row in the page, enlarged with nearest neighbours
GAP = 2  # white pixels between panels


def comparison_image(target_rgb: torch.Tensor, student_rgb: torch.Tensor, width: int = COMPARISON_WIDTH) -> np.ndarray:
    """``uint8 [H', W', 3]``: one row per target camera, teacher's frame left, student's render right.

    ``target_rgb`` and ``student_rgb``: ``[N, H, W, 3]`` floats in [0, 1] from the same N cameras.
    Each row is enlarged by a whole factor (nearest neighbour) to about ``width`` pixels.
    """
    if target_rgb.shape != student_rgb.shape or target_rgb.ndim != 4:
        raise InputDataError(f"teacher and student frames must both be [N, H, W, 3], found {list(target_rgb.shape)} "
                         f"and {list(student_rgb.shape)}")
    to_uint8 = lambda t: (t.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()  # noqa: E731
    target, student = to_uint8(target_rgb), to_uint8(student_rgb)
    n, h, w, _ = target.shape
    factor = max(1, width // (2 * w + GAP))
    rows = []
    for i in range(n):
        gap = np.full((h, GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([target[i], gap, student[i]], axis=1))
        if i < n - 1:
            rows.append(np.full((GAP, 2 * w + GAP, 3), 255, np.uint8))
    grid = np.concatenate(rows, axis=0)
    return grid.repeat(factor, axis=0).repeat(factor, axis=1)


class LiveView:
    """Callable ``(step, preview)`` for :func:`lyra.distill.train.train`'s ``on_eval``."""

    def __init__(self, port: int = 8080, host: str = "127.0.0.1"):
        import viser

        self.server = viser.ViserServer(host=host, port=port)
        self.server.scene.set_up_direction((0.0, -1.0, 0.0))
        self.label = self.server.gui.add_markdown("waiting for the first evaluation ...")
        self.caption = self.server.gui.add_markdown("")
        self.comparison = None  # the "teacher | student" image, made at the first evaluation
        self.handle = None
        self.step: int | None = None

    def __call__(self, step: int, preview: EvalPreview) -> None:
        g = preview.gaussians.to("cpu")
        self.handle = self.server.scene.add_gaussian_splats(
            "/student",
            centers=g.means.detach().numpy().astype(np.float32),
            covariances=g.covariances().detach().numpy().astype(np.float32),
            rgbs=g.rgb().clamp(0, 1).detach().numpy().astype(np.float32),
            opacities=g.opacities.detach().numpy().astype(np.float32)[:, None],
        )
        image = comparison_image(preview.target_rgb, preview.student_rgb)
        if self.comparison is None:
            self.comparison = self.server.gui.add_image(image, label="teacher | student", format="png")
        else:
            self.comparison.image = image
        views = len(preview.target_rgb)
        self.step = step
        self.label.content = f"student at step {step}: {len(g)} Gaussians"
        self.caption.content = (f"Left: the teacher's frame; right: the student rendered from the same camera "
                                f"({views} held-out target view{'s' if views != 1 else ''}).")

    def finish(self, checkpoint: str | Path) -> None:
        """Say that training ended; the page keeps the last evaluation (the final checkpoint's student)."""
        at = "" if self.step is None else f" at step {self.step}"
        self.label.content = (f"**Training finished{at}.** Showing the final checkpoint `{checkpoint}`. "
                              "Press Ctrl-C in the terminal to close this page.")

    def serve_until_interrupted(self, stop: threading.Event | None = None) -> None:
        """Keep serving until Ctrl-C (or until ``stop`` is set), then stop the server."""
        stop = stop or threading.Event()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.server.stop()

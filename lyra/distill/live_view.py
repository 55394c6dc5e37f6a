"""``lyra train --view``: a viser page showing the student's decoded eval scene, replaced at each eval.

Binds 127.0.0.1 only. The scene is the first held-out sample decoded by the current student
(Gaussians relative to its first input camera, OpenCV frame: -y up).
"""

from __future__ import annotations

import numpy as np

from lyra.scene.gaussians import Gaussians


class LiveView:
    """Callable ``(step, gaussians)`` for :func:`lyra.distill.train.train`'s ``on_eval``."""

    def __init__(self, port: int = 8080, host: str = "127.0.0.1"):
        import viser

        self.server = viser.ViserServer(host=host, port=port)
        self.server.scene.set_up_direction((0.0, -1.0, 0.0))
        self.label = self.server.gui.add_markdown("waiting for the first evaluation ...")
        self.handle = None

    def __call__(self, step: int, gaussians: Gaussians) -> None:
        g = gaussians.to("cpu")
        handle = self.server.scene.add_gaussian_splats(
            "/student",
            centers=g.means.detach().numpy().astype(np.float32),
            covariances=g.covariances().detach().numpy().astype(np.float32),
            rgbs=g.rgb().clamp(0, 1).detach().numpy().astype(np.float32),
            opacities=g.opacities.detach().numpy().astype(np.float32)[:, None],
        )
        self.handle = handle
        self.label.content = f"student at step {step}: {len(g)} Gaussians"

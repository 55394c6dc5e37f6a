"""`lyra train --view`: the student's scene is served and replaced at each eval."""

import socket

from lyra.distill.live_view import LiveView
from lyra.scene.synthetic import random_gaussians


def test_each_eval_replaces_the_served_scene():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    view = LiveView(port=port)
    try:
        view(0, random_gaussians(50, sh_degree=0))
        first = view.handle
        view(10, random_gaussians(80, sh_degree=0, seed=1))
        assert view.handle is not first
        assert "step 10: 80 Gaussians" in view.label.content
    finally:
        view.server.stop()

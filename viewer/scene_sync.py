"""Send the state's packed buffers to viser: one splat node per layer, current frame only.

Hidden splat nodes still cost the client a depth sort, so a 4D layer has ONE
node whose buffer is swapped on a frame change. The buffer comes pre-packed
from :meth:`viewer.state.AppState.display_buffer` (cached per frame), so a
frame switch is a single buffer assignment, i.e. one websocket message.
"""

from __future__ import annotations

import threading

import numpy as np
import viser
from viser import _messages
from viser._scene_handles import GaussianSplatHandle

from viewer.state import AppState

NODE_PREFIX = "/scenes"
IDLE_SECONDS = 1.0  # paused this long with nothing changing: the full frame replaces the budget's cut


def node_name(layer: str, serial: int) -> str:
    """A scene-graph path for a layer; the serial keeps names like "a b" and "a_b" apart."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer)
    return f"{NODE_PREFIX}/{serial}_{safe}"


def add_packed_splats(scene: viser.SceneApi, name: str, buffer: np.ndarray, visible: bool = True) -> GaussianSplatHandle:
    """A splat node from an already-packed ``uint32 [N, 8]`` buffer.

    viser's ``add_gaussian_splats`` only takes unpacked ``[N, 3, 3]``
    covariances; this builds the same message it builds, from our buffer.
    """
    message = _messages.GaussianSplatsMessage(name=name, props=_messages.GaussianSplatsProps(buffer=buffer, scale=1.0))
    return GaussianSplatHandle._make(scene, message, name, (1.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0), visible)


class SceneSync:
    """Keeps viser's splat nodes equal to the state's current frames."""

    def __init__(self, server: viser.ViserServer, state: AppState):
        self.server = server
        self.state = state
        self._lock = threading.Lock()  # one sync at a time, so sends stay in order
        self._nodes: dict[str, GaussianSplatHandle] = {}
        self._sent: dict[str, object] = {}
        self._serial = 0
        self._idle_timer: threading.Timer | None = None
        self.on_change = None  # the app's refresh (sync + panels); called when idle upgrades the frame

    def sync(self) -> int:
        """Send every layer whose displayed content changed; returns the number of buffers sent."""
        with self._lock:
            sends = []
            with self.state.lock:
                for name, layer in self.state.layers.items():
                    i = layer.frame_index(self.state.frame)
                    frame = layer.frames[i]
                    bake = self.state.view_position if frame.sh_degree > 0 else None
                    budget = self.state.current_budget()
                    key = (i, frame.revision, bake, layer.visible, budget)  # what the sent buffer depends on
                    if self._sent.get(name) != key:
                        sends.append((name, self.state.send_buffer(name, i), layer.visible, key))
                removed = [name for name in self._nodes if name not in self.state.layers]
            for name in removed:
                self._nodes.pop(name).remove()
                self._sent.pop(name, None)
            for name, buffer, visible, key in sends:
                self._send(name, buffer, visible)
                self._sent[name] = key
            if sends and self.state.budget_status() is not None and not self.state.playing:
                self._upgrade_when_idle()
            return len(sends)

    def _upgrade_when_idle(self) -> None:
        """Paused and cut to the budget: send every splat once nothing changed for IDLE_SECONDS."""
        version = self.state.version
        if self._idle_timer is not None:
            self._idle_timer.cancel()

        def upgrade() -> None:
            with self.state.lock:
                if self.state.version != version or self.state.playing:
                    return  # something moved on; the next sync schedules again
                self.state.full_detail = True
            (self.on_change or self.sync)()

        self._idle_timer = threading.Timer(IDLE_SECONDS, upgrade)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def _send(self, name: str, buffer: np.ndarray, visible: bool) -> None:
        handle = self._nodes.get(name)
        show = visible and len(buffer) > 0  # the client cannot draw an empty buffer; hide the node instead
        if handle is None:
            if len(buffer) == 0:
                buffer = np.zeros((1, 8), np.uint32)
            self._serial += 1
            self._nodes[name] = add_packed_splats(self.server.scene, node_name(name, self._serial), buffer, show)
            return
        if len(buffer) > 0:
            handle.buffer = buffer
        if handle.visible != show:
            handle.visible = show

"""Send the state's packed buffers to viser: one splat node per layer, current frame only.

Hidden splat nodes still cost the client a depth sort, so a 4D layer has ONE
node whose buffer is swapped on a frame change. The buffer comes pre-packed
from :meth:`viewer.state.AppState.send_buffer` (cut to the splat budget,
cached per frame), so a frame switch is a single buffer assignment, i.e. one
websocket message.
"""

from __future__ import annotations

import threading

import numpy as np
import viser
from viser import _messages
from viser._scene_handles import GaussianSplatHandle

from viewer.state import AppState

NODE_PREFIX = "/scenes"
IDLE_SECONDS = 1.0  # paused this long with nothing changing: the settled budget replaces the playing one


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
        self._idle_version = -1
        self.on_change = None  # the app's refresh (sync + panels); called when idle upgrades the frame

    def sync(self) -> int:
        """Send every layer whose displayed content changed; returns the number of buffers sent.

        What is sent is the state's :meth:`~viewer.state.AppState.send_plan` (the splat budget computed
        once, split over the visible layers); buffers are prepared outside the state's lock.
        """
        with self._lock:
            plan = self.state.send_plan()
            sends = [item for item in plan if self._sent.get(item.layer) != (item.frame, item.visible, item.key)]
            names = {item.layer for item in plan}
            for name in [name for name in self._nodes if name not in names]:
                self._nodes.pop(name).remove()
                self._sent.pop(name, None)
            for item in sends:
                self._send(item.layer, self.state.send_buffer(item), item.visible)
                self._sent[item.layer] = (item.frame, item.visible, item.key)
            policy = self.state.display_policy()
            if not policy.settled and not policy.is_playing:
                self._settle_when_idle()
            return len(sends)

    def _settle_when_idle(self) -> None:
        """After a frame change, show the settled budget (paused, or full detail) once nothing changed for
        IDLE_SECONDS; the state decides whether that changes anything (not while playing)."""
        version = self.state.version
        if self._idle_timer is not None:
            if self._idle_version == version and self._idle_timer.is_alive():
                return  # already waiting for this very state
            self._idle_timer.cancel()
        self._idle_version = version

        def settle() -> None:
            if self.state.settle(version):
                (self.on_change or self.sync)()

        self._idle_timer = threading.Timer(IDLE_SECONDS, settle)
        self._idle_timer.daemon = True
        self._idle_timer.start()

    def stop(self) -> None:
        """Cancel a pending idle settle (the app is stopping)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()

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

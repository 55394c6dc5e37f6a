"""The viewer application: a viser server, the scene state and one panel per concern.

``ViewerApp(server, ...)`` wires :class:`viewer.state.AppState` (the one lock
around scene state), :class:`viewer.scene_sync.SceneSync` (what the browser
shows) and the panels under :mod:`viewer.panels`. Every user action goes
through :meth:`ViewerApp.action`, which runs it, re-syncs the scene, updates
the status line and turns a :class:`lyra.errors.LyraError` into a notification
in the browser that triggered it (state untouched). Long work goes through
:meth:`ViewerApp.start_job`.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import viser

from lyra.errors import LyraError
from lyra.fileio import clean_stale_temporaries
from lyra.scene import GaussianSequence
from viewer.jobs import Job
from viewer.open_path import DEFAULT_OPEN_TIMEOUT_S, PathConfinement, load_with_deadline
from viewer.scene_sync import SceneSync
from viewer.security import UploadLimiter, refuse_share
from viewer.state import AppState

WHITE = (255, 255, 255)


class ViewerApp:
    def __init__(
        self,
        server: viser.ViserServer,
        *,
        output_dir: str | os.PathLike = "exports",
        max_upload_mb: float = 1024.0,
        state: AppState | None = None,
        data_dirs: Iterable[str | os.PathLike] = (),
        open_anywhere: bool = False,
        open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
    ):
        """``data_dirs``: folders clients may open paths in (command-line scenes are added as they open);
        ``open_anywhere`` lifts that confinement; ``open_timeout_s`` bounds one Open-by-path load."""
        from viewer.panels import edit, export, render, scene, status, time_panel

        refuse_share(server)  # whoever built the server: no public tunnel, whatever a client asks
        self.server = server
        self.state = state or AppState()
        self.sync_scene = SceneSync(server, self.state)
        self.output_dir = Path(output_dir).expanduser().resolve()
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.uploads = UploadLimiter(server, self.max_upload_bytes, on_refused=self._upload_refused)
        self.paths = PathConfinement(data_dirs, anywhere=open_anywhere)
        self.open_timeout_s = float(open_timeout_s)
        clean_stale_temporaries(self.output_dir)  # left by exports that were killed mid-write
        self.background_rgb = WHITE
        self.jobs: list[Job] = []
        self._jobs_lock = threading.Lock()
        server.gui.configure_theme(show_share_button=False, control_width="medium")

        tabs = server.gui.add_tab_group()
        with tabs.add_tab("Scene", viser.Icon.BOX):
            self.scene_panel = scene.ScenePanel(self)
            self.time_panel = time_panel.TimePanel(self)
        with tabs.add_tab("Edit", viser.Icon.PENCIL):
            self.edit_panel = edit.EditPanel(self)
        with tabs.add_tab("Export", viser.Icon.DOWNLOAD):
            self.export_panel = export.ExportPanel(self)
        with tabs.add_tab("Render", viser.Icon.CAMERA):
            self.render_panel = render.RenderPanel(self)
        self.status_panel = status.StatusPanel(self)
        server.on_client_connect(self._on_connect)

    # ------------------------------------------------------------- actions
    def action(self, label: str, fn: Callable[[], object], client: viser.ClientHandle | None = None) -> object:
        """Run a user action; a LyraError becomes a notification and the state is left as it was."""
        try:
            result = fn()
        except LyraError as exc:
            self.notify(f"{label} failed", str(exc), client, error=True)
            return None
        except Exception as exc:  # a bug, not a user error: say so and keep serving
            traceback.print_exc()
            self.notify(f"{label} failed", f"internal error: {type(exc).__name__}: {exc}", client, error=True)
            return None
        self.refresh()
        return result

    def refresh(self) -> None:
        """Send changed buffers and update every panel that mirrors the state."""
        self.sync_scene.sync()
        self.scene_panel.refresh()
        self.time_panel.refresh()
        self.edit_panel.refresh()
        self.export_panel.refresh()
        self.status_panel.refresh()

    def notify(self, title: str, body: str, client: viser.ClientHandle | None = None, *, error: bool = False) -> None:
        targets = [client] if client is not None else list(self.server.get_clients().values())
        for c in targets:
            c.add_notification(title, body, auto_close_seconds=None if error else 4.0, color="red" if error else None)
        if error:
            print(f"[lyra-studio] {title}: {body}", flush=True)

    def start_job(self, name: str, fn: Callable[[Job], object], client: viser.ClientHandle | None = None,
                  on_done: Callable[[Job], None] | None = None) -> Job:
        """Run ``fn(job)`` in the background; progress shows in the status panel, errors as notifications."""

        def changed(job: Job) -> None:
            self.status_panel.show_job(job)
            if job.status == "failed":
                self.notify(f"{name} failed", job.error or "unknown error", client, error=True)
            elif job.status == "cancelled":
                self.notify(name, "cancelled", client)
            elif job.status == "done":
                if on_done is not None:
                    on_done(job)
                self.refresh()

        job = Job(name, fn, changed)
        with self._jobs_lock:
            self.jobs = [j for j in self.jobs if j.status in ("pending", "running")] + [job]
        return job.start()

    def cancel_jobs(self) -> None:
        with self._jobs_lock:
            for job in self.jobs:
                job.cancel()

    # -------------------------------------------------------------- scenes
    def open_scene(self, path: str | os.PathLike, name: str | None = None, drop_invalid: bool = False) -> str:
        """Load a scene file or folder into a new layer; raises SceneFileError (state untouched).

        For the server's own paths (command line, uploads); a client's typed path goes through
        :meth:`open_path`. ``drop_invalid``: drop splats with NaN/Inf values or zero quaternions
        instead of refusing the file.
        """
        from lyra.scene import load

        path = Path(path).expanduser()
        start = time.perf_counter()
        # Loader warnings (e.g. "dropped 3 of 10 splats") go to the user. catch_warnings is process-wide;
        # a warning from another thread during a load may land here too, which is harmless.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scene = load(path, drop_invalid=drop_invalid)
        return self._add_loaded(scene, path, name, caught, start)

    def open_path(self, raw: str, client: viser.ClientHandle | None = None, drop_invalid: bool = False) -> Job | None:
        """Open-by-path for a client: confined to the served folders, loaded as a job with a deadline.

        Returns the job (None when the path was refused; the client is told why). The callback
        thread returns at once, so stuck reads can never use up viser's callback threads.
        """
        from lyra.scene import load

        try:
            path = self.paths.check(raw)
        except LyraError as exc:
            self.notify("Open failed", str(exc), client, error=True)
            return None
        start = time.perf_counter()

        def run(job: Job) -> str:
            scene, caught = load_with_deadline(lambda: load(path, drop_invalid=drop_invalid), self.open_timeout_s,
                                               path, cancelled=lambda: job.cancelled)
            return self._add_loaded(scene, path, None, caught, start)

        return self.start_job(f"Open {path.name}", run, client)

    def _upload_refused(self, client_id: int, name: str, size: int) -> None:
        client = self.server.get_clients().get(client_id)
        self.notify(f"Upload {name[:60]!r} refused", f"uploads are limited to {self.max_upload_bytes / 2**20:g} MiB "
                    f"(this one: {size / 2**20:.1f} MiB; start the viewer with --max-upload-mb to change it)",
                    client, error=True)

    def _add_loaded(self, scene, path: Path, name: str | None, caught: list, start: float) -> str:
        """Add a loaded scene as a new layer, tell the user about loader warnings, frame the camera."""
        for warning in caught:
            self.notify(f"Opened {path.name} with a warning", str(warning.message))
        layer = self.state.add_scene(scene, name or path.stem or path.name, source=str(path))
        self.state.last_action = (f"Open {layer}", time.perf_counter() - start)
        self.refresh()
        self.fit_camera()
        if isinstance(scene, GaussianSequence):
            self.start_job("Preparing frames", lambda job: self._prepack_frames(layer, job))
        return layer

    def _prepack_frames(self, layer: str, job: Job) -> int:
        """Pack every frame's buffer now (while the budget allows) so playback is one send per frame."""
        state = self.state
        with state.lock:
            if layer not in state.layers:
                return 0
            count = len(state.layers[layer].frames)
        for i in range(count):
            job.check_cancelled()
            with state.lock:
                if layer not in state.layers or state.cached_buffer_bytes() > 0.8 * state.buffer_cache_bytes:
                    return i
                state.display_buffer(layer, i)
            job.progress((i + 1) / count, f"{layer}: frame {i + 1}/{count}")
        return count

    def fit_camera(self, client: viser.ClientHandle | None = None) -> None:
        """Point the camera(s) at the visible scenes' bounds from a 3/4 view."""
        center, radius = self.scene_extent()
        targets = [client] if client is not None else list(self.server.get_clients().values())
        for c in targets:
            self._place_camera(c, center, radius)

    def scene_extent(self) -> tuple[np.ndarray, float]:
        """Centre and radius of the visible layers' current frames (robust to far floaters)."""
        with self.state.lock:
            means = [layer.frames[layer.frame_index(self.state.frame)] for layer in self.state.layers.values() if layer.visible]
            pts = [f.gaussians.means[~f.deleted].float().numpy() for f in means]
        pts = [p for p in pts if len(p)]
        if not pts:
            return np.zeros(3), 1.0
        allp = np.concatenate(pts)
        lo, hi = np.percentile(allp, 2, axis=0), np.percentile(allp, 98, axis=0)
        return (lo + hi) / 2, float(max(np.linalg.norm(hi - lo) / 2, 1e-3))

    @staticmethod
    def _place_camera(client: viser.ClientHandle, center: np.ndarray, radius: float) -> None:
        # OpenCV world as Lyra writes it: y down, so "up" is -y and the camera looks along +z from behind.
        position = center + radius * np.array([0.0, -0.6, -2.2])
        with client.atomic():
            client.camera.up_direction = (0.0, -1.0, 0.0)
            client.camera.position = position
            client.camera.look_at = center

    def _on_connect(self, client: viser.ClientHandle) -> None:
        self.render_panel.attach_client(client)
        center, radius = self.scene_extent()
        self._place_camera(client, center, radius)

    def set_background(self, rgb: tuple[int, int, int]) -> None:
        """Solid background colour (shown behind the splats, and used by server renders)."""
        self.background_rgb = tuple(int(c) for c in rgb)
        image = np.broadcast_to(np.array(self.background_rgb, np.uint8), (8, 8, 3)).copy()
        self.server.scene.set_background_image(image, format="png")

"""The viewer application: a viser server, the scene state and the panels of :data:`PANELS`.

``ViewerApp(server, ...)`` wires :class:`viewer.state.AppState` (scene state
behind one lock, used through its methods), :class:`viewer.scene_sync.SceneSync`
(what the browser shows) and one instance of each panel class in
:data:`PANELS`. A panel is a class with ``__init__(app)`` and ``refresh()``,
and optionally ``attach_client(client)`` (a browser connected), ``detach_client(client)`` (it left:
release everything kept for it) and ``stop()``;
panels talk to the state and to this app, never to one another.

Every user action goes through :meth:`ViewerApp.action`, which runs it,
re-syncs the scene, refreshes the panels and turns a
:class:`lyra.errors.LyraError` into a notification in the browser that
triggered it (state untouched). Long work goes through
:meth:`ViewerApp.start_job`; the job is a :mod:`lyra.progress` callback and
gets its own status row with a Cancel button (:mod:`viewer.panels.jobs`).
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
from lyra.render.framing import Framing, frame_scene
from lyra.scene import Gaussians, GaussianSequence
from viewer.client_patches import install_client_patches
from viewer.gui_guard import guard_gui_updates
from viewer.jobs import Job
from viewer.memory import release_freed_memory_soon, tune_allocator
from viewer.open_path import DEFAULT_OPEN_TIMEOUT_S, PathConfinement, load_with_deadline
from viewer.panels import distill, edit, export, generate, jobs, render, scene, status, time_panel
from viewer.scene_sync import SceneSync
from viewer.security import UploadLimiter, refuse_share
from viewer.state import AppState
from viewer.uploads import safe_upload_name, start_upload_job

WHITE = (255, 255, 255)
ERROR_NOTE_SECONDS = 15.0  # errors stay longer than news, but close by themselves
NOTE_SECONDS = 4.0

# THE panel registry: (tab title, tab icon, panel class) in display order; a tab of None sits below the tabs.
PANELS: list[tuple[str | None, str | None, type]] = [
    ("Scene", viser.Icon.BOX, scene.ScenePanel),
    ("Scene", viser.Icon.BOX, time_panel.TimePanel),
    ("Generate", viser.Icon.SPARKLES, generate.GeneratePanel),
    ("Distill", viser.Icon.SCHOOL, distill.DistillPanel),
    ("Edit", viser.Icon.PENCIL, edit.EditPanel),
    ("Export", viser.Icon.DOWNLOAD, export.ExportPanel),
    ("Render", viser.Icon.CAMERA, render.RenderPanel),
    (None, None, status.StatusPanel),
    (None, None, jobs.JobsPanel),
]


class ViewerApp:
    def __init__(
        self,
        server: viser.ViserServer,
        *,
        output_dir: str | os.PathLike = "exports",
        max_upload_mb: float = 1024.0,
        max_upload_total_mb: float | None = None,
        state: AppState | None = None,
        data_dirs: Iterable[str | os.PathLike] = (),
        open_anywhere: bool = False,
        open_timeout_s: float = DEFAULT_OPEN_TIMEOUT_S,
    ):
        """``max_upload_total_mb``: memory all uploads in flight may hold together (default twice
        ``max_upload_mb``). ``data_dirs``: folders clients may open paths in (command-line scenes are added as they open);
        ``open_anywhere`` lifts that confinement; ``open_timeout_s`` bounds one Open-by-path load."""
        refuse_share(server)  # whoever built the server: no public tunnel, whatever a client asks
        install_client_patches(server)  # before any splats: viser's splat quads would log a NaN bounding sphere
        tune_allocator()  # what clients' work frees goes back to the OS (viewer.memory)
        self.server = server
        self.state = state or AppState()
        self.sync_scene = SceneSync(server, self.state)
        self.sync_scene.on_change = self.refresh
        self.output_dir = Path(output_dir).expanduser().resolve()
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        # All uploads together (arriving or being written) hold at most this much memory; default 2 uploads' worth.
        total_mb = 2 * max_upload_mb if max_upload_total_mb is None else max_upload_total_mb
        self.uploads = UploadLimiter(server, self.max_upload_bytes, on_refused=self._upload_refused,
                                     max_total_bytes=int(total_mb * 1024 * 1024))
        guard_gui_updates(server, self._gui_value_refused)  # every client GUI value checked against its widget
        self.paths = PathConfinement(data_dirs, anywhere=open_anywhere)
        self.open_timeout_s = float(open_timeout_s)
        clean_stale_temporaries(self.output_dir)  # left by exports that were killed mid-write
        self.background_rgb = WHITE
        self.keyframed_path = ""  # the Render panel's camera-path JSON; Generate can add it as a custom trajectory
        self.jobs: list[Job] = []
        self._jobs_lock = threading.Lock()
        server.gui.configure_theme(show_share_button=False, control_width="medium")

        self.panels: dict[str, object] = {}
        tab_group = server.gui.add_tab_group()
        tabs: dict[str, object] = {}
        for title, icon, panel_class in PANELS:
            if title is None:
                panel = panel_class(self)
            else:
                if title not in tabs:
                    tabs[title] = tab_group.add_tab(title, icon)
                with tabs[title]:
                    panel = panel_class(self)
            self.panels[panel_class.key] = panel
        self._framing: tuple | None = None  # (what it depends on, framing): one per scene change, not per connect
        server.on_client_connect(self._on_connect)
        server.on_client_disconnect(self._on_disconnect)

    def set_keyframed_path(self, text: str) -> None:
        """Publish the Render panel's camera-path JSON (the Generate panel can add it as a trajectory)."""
        self.keyframed_path = text.strip()

    def panel(self, key: str):
        """The panel registered under ``key`` (``scene``, ``time``, ``edit``, ``export``, ``render``, ...)."""
        return self.panels[key]

    # ------------------------------------------------------------- actions
    def action(self, label: str, fn: Callable[[], object], client: viser.ClientHandle | None = None) -> object:
        """Run a user action; a LyraError becomes a notification and the state is left as it was."""
        start, before = time.perf_counter(), self.state.last_action
        try:
            result = fn()
        except LyraError as exc:
            self.notify(f"{label} failed", str(exc), client, error=True)
            self._action_ended(f"{label} failed", start)
            return None
        except Exception as exc:  # a bug, not a user error: say so and keep serving
            traceback.print_exc()
            self.notify(f"{label} failed", f"internal error: {type(exc).__name__}: {exc}", client, error=True)
            self._action_ended(f"{label} failed", start)
            return None
        if self.state.last_action is before:  # edits record their own, more precise label
            self.state.record_action(label, time.perf_counter() - start)
        self.refresh()
        return result

    def _action_ended(self, label: str, start: float) -> None:
        """Put ``label`` on the status line's "last:" and show it."""
        self.state.record_action(label, time.perf_counter() - start)
        self.panel("status").refresh()

    def refresh(self) -> None:
        """Send changed buffers and update every panel that mirrors the state."""
        self.sync_scene.sync()
        for panel in self.panels.values():
            panel.refresh()

    def notify(self, title: str, body: str, client: viser.ClientHandle | None = None, *, error: bool = False) -> None:
        targets = [client] if client is not None else list(self.server.get_clients().values())
        seconds = ERROR_NOTE_SECONDS if error else NOTE_SECONDS
        for c in targets:
            c.add_notification(title, body, auto_close_seconds=seconds, color="red" if error else None)
        if error:
            print(f"[lyra-studio] {title}: {body}", flush=True)

    def start_job(self, name: str, fn: Callable[[Job], object], client: viser.ClientHandle | None = None,
                  on_done: Callable[[Job], None] | None = None, *, ends_with_client: bool = False) -> Job:
        """Run ``fn(job)`` in the background; it shows in its own row of the jobs panel, errors as notifications.

        ``ends_with_client``: the job only serves ``client`` (a render from its camera): cancelled when it leaves.
        """
        rows = self.panel("jobs")
        start = time.perf_counter()

        def changed(job: Job) -> None:
            rows.show(job)
            if job.status == "failed":
                self.notify(f"{name} failed", job.error or "unknown error", client, error=True)
                self._action_ended(f"{name} failed", start)
            elif job.status == "cancelled":
                self.notify(name, "cancelled", client)
                self._action_ended(f"{name} cancelled", start)
            elif job.status == "done":
                if on_done is not None:
                    on_done(job)
                self.state.record_action(name, time.perf_counter() - start)
                self.refresh()

        job = Job(name, fn, changed)
        job.owner_id = client.client_id if ends_with_client and client is not None else None
        with self._jobs_lock:
            self.jobs = [j for j in self.jobs if j.running] + [job]
        return job.start()

    def cancel_jobs(self) -> None:
        """Cancel every running job (shutdown); a user cancels one job from its own row."""
        with self._jobs_lock:
            for job in self.jobs:
                job.cancel()

    def stop(self) -> None:
        """Stop panel threads and jobs (the server is stopped by its owner)."""
        for panel in self.panels.values():
            if hasattr(panel, "stop"):
                panel.stop()
        self.cancel_jobs()
        self.sync_scene.stop()

    # -------------------------------------------------------------- scenes
    def open_scene(self, path: str | os.PathLike, name: str | None = None, drop_invalid: bool = False,
                   replace: bool = False) -> str:
        """Load a scene file or folder as a layer; raises SceneFileError (state untouched).

        For the server's own paths (command line, uploads); a client's typed path goes through
        :meth:`open_path`. ``replace``: the new scene replaces every loaded layer (after it loaded);
        else it is added as a layer. ``drop_invalid``: drop splats with NaN/Inf values or zero
        quaternions instead of refusing the file.
        """
        from lyra.scene import load

        path = Path(path).expanduser()
        start = time.perf_counter()
        # Loader warnings (e.g. "dropped 3 of 10 splats") go to the user. catch_warnings is process-wide;
        # a warning from another thread during a load may land here too, which is harmless.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = load(path, drop_invalid=drop_invalid)
        return self._add_loaded(loaded, path, name, caught, start, replace)

    def open_path(self, raw: str, client: viser.ClientHandle | None = None, drop_invalid: bool = False,
                  replace: bool = False, on_refused: Callable[[str], None] | None = None) -> Job | None:
        """Open-by-path for a client: confined to the served folders, loaded as a job with a deadline.

        Returns the job (None when the path was refused; the client is told why in a notification,
        and ``on_refused(reason)`` lets a panel keep the reason on screen). The callback thread
        returns at once, so stuck reads can never use up viser's callback threads.
        """
        from lyra.scene import load

        start = time.perf_counter()
        try:
            path = self.paths.check(raw)
        except LyraError as exc:
            self.notify("Open failed", str(exc), client, error=True)
            if on_refused is not None:
                on_refused(str(exc))
            self._action_ended("Open refused", start)
            return None
        start = time.perf_counter()

        def run(job: Job) -> str:
            def confined_load():
                with self.paths.reads():  # every file the load opens stays inside the served folders
                    return load(path, drop_invalid=drop_invalid)

            loaded, caught = load_with_deadline(confined_load, self.open_timeout_s,
                                                path, cancelled=lambda: job.cancelled)
            return self._add_loaded(loaded, path, None, caught, start, replace)

        return self.start_job(f"Open {path.name}", run, client)

    def open_upload(self, uploaded, client: viser.ClientHandle | None = None, drop_invalid: bool = False,
                    replace: bool = False) -> Job | None:
        """Open a browser upload as a scene: written to a temp file, then loaded as a job with Cancel and the
        Open-by-path deadline (:mod:`viewer.uploads`). Returns the job, or None when the upload was refused."""
        from lyra.scene import load

        start = time.perf_counter()
        name = Path(safe_upload_name(uploaded.name)).stem

        def use(job: Job, path: Path) -> str:
            loaded, caught = load_with_deadline(lambda: load(path, drop_invalid=drop_invalid), self.open_timeout_s,
                                                path, cancelled=lambda: job.cancelled)
            return self._add_loaded(loaded, path, name, caught, start, replace)

        return start_upload_job(self, uploaded, client, use)

    def _upload_refused(self, client_id: int, name: str, size: int, reason: str | None = None) -> None:
        client = self.server.get_clients().get(client_id)
        body = reason or (f"uploads are limited to {self.max_upload_bytes / 2**20:g} MiB "
                          f"(this one: {size / 2**20:.1f} MiB; start the viewer with --max-upload-mb to change it)")
        self.notify(f"Upload {name[:60]!r} refused", body, client, error=True)

    def _gui_value_refused(self, client_id: int, label: str, reason: str) -> None:
        client = self.server.get_clients().get(client_id)
        self.notify(f"{label}: value refused", f"{reason}; the control keeps its value", client, error=True)

    def _add_loaded(self, loaded, path: Path, name: str | None, caught: list, start: float, replace: bool) -> str:
        """Add a loaded scene as a layer (replacing the others when asked), report loader warnings, frame it."""
        for warning in caught:
            self.notify(f"Opened {path.name} with a warning", str(warning.message))
        if replace:
            self.state.clear()
        layer = self.add_scene_layer(loaded, name or path.stem or path.name, source=str(path))
        self.state.last_action = (f"Open {layer}", time.perf_counter() - start)
        self.fit_camera()
        return layer

    def add_scene_layer(self, scene: Gaussians | GaussianSequence, name: str, source: str = "") -> str:
        """Add a scene as a new layer (what a sequence plays is prepared in a job); returns its name."""
        layer = self.state.add_scene(scene, name, source=source)
        self.refresh()
        if isinstance(scene, GaussianSequence):
            self.start_job("Preparing frames", lambda job: self.state.prepare_frames(layer, job))
        return layer

    def framing(self) -> Framing:
        """The framing (:func:`lyra.render.framing.frame_scene`) of the visible layers' frames shown now."""
        state = self.state
        with state.lock:  # what the framing depends on: which frames show, and their contents
            key = (state.frame, tuple((name, layer.visible, layer.frames[layer.frame_index(state.frame)].revision)
                                      for name, layer in state.layers.items()))
        cached = self._framing
        if cached is not None and cached[0] == key:
            return cached[1]
        frames = state.visible_current_frames()
        framing = frame_scene(Gaussians.cat(frames) if frames else Gaussians.empty())
        self._framing = (key, framing)
        return framing

    def fit_camera(self, client: viser.ClientHandle | None = None) -> None:
        """Put the camera(s) where :func:`frame_scene` starts (Lyra scenes: their first input camera)."""
        framing = self.framing()
        targets = [client] if client is not None else list(self.server.get_clients().values())
        for c in targets:
            self.place_camera(c, framing)

    @staticmethod
    def place_camera(client: viser.ClientHandle, framing: Framing) -> None:
        """Put ``client``'s camera at ``framing``'s starting view."""
        with client.atomic():
            client.camera.up_direction = tuple(framing.up.tolist())
            client.camera.position = tuple(framing.origin_c2w[:3, 3].tolist())
            client.camera.look_at = tuple(framing.look_at.tolist())

    def _on_connect(self, client: viser.ClientHandle) -> None:
        for panel in self.panels.values():
            if hasattr(panel, "attach_client"):
                panel.attach_client(client)
        self.place_camera(client, self.framing())

    def _on_disconnect(self, client: viser.ClientHandle) -> None:
        """A client left: every panel drops what it kept for it, then freed memory goes back to the OS."""
        for panel in self.panels.values():
            if hasattr(panel, "detach_client"):
                panel.detach_client(client)
        with self._jobs_lock:
            for job in self.jobs:
                if job.running and getattr(job, "owner_id", None) == client.client_id:
                    job.cancel()
        release_freed_memory_soon()

    def set_background(self, rgb: tuple[int, int, int]) -> None:
        """Solid background colour (shown behind the splats, and used by server renders)."""
        self.background_rgb = tuple(int(c) for c in rgb)
        image = np.broadcast_to(np.array(self.background_rgb, np.uint8), (8, 8, 3)).copy()
        self.server.scene.set_background_image(image, format="png")

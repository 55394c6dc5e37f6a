"""Render panel: a high-fidelity still (lyra.render, with SH) as the background image, an MP4 of a
camera path, and SH colour baking for the client's current view.

The MP4 follows the same framing and paths as ``lyra render`` (:mod:`viewer.renders`);
a 4D scene plays over the video unless "Freeze time" holds the frame shown now. Keyframes made
from the browser's views (:mod:`viewer.keyframes`), when there are any, replace the path;
a camera-path file saved or loaded there becomes the "Keyframed path JSON".

viser's client draws splats with one RGB per splat, so for scenes with SH
degree > 0 the panel bakes view-dependent colours for the camera position once
the camera has settled, via :meth:`viewer.state.AppState.set_view_position`;
:class:`viewer.view_bake.ViewBaker` keeps one pending bake per client and
forgets it when the client disconnects.
"""

from __future__ import annotations

import math

import numpy as np
import viser

from lyra.render.camera import Camera
from lyra.render.framing import trajectory_names
from lyra.render.looks import LOOK_NAMES
from viewer.export import resolve_inside
from viewer.keyframes import KeyframeEditor
from viewer.open_path import read_camera_path
from viewer.renders import render_path_video, render_still
from viewer.view_bake import ViewBaker


class RenderPanel:
    key = "render"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        self.look = gui.add_dropdown("Look", ("auto", *LOOK_NAMES), initial_value="auto",
                                     hint="Stills and videos. lyra: Lyra's own renders (3DGUT, white background); "
                                          "standard: EWA splatting on the viewer's background; auto: lyra for "
                                          "scenes that came from Lyra")
        with gui.add_folder("Still"):
            self.height = gui.add_slider("Render height", 64, 1080, 8, 360)
            self.still_button = gui.add_button("Render still as background", icon=viser.Icon.PHOTO)
            self.clear_button = gui.add_button("Clear background render")
        with gui.add_folder("Video"):
            self.path = gui.add_dropdown("Camera path", trajectory_names(), initial_value="orbit",
                                         hint="The paths of `lyra render --trajectory`, around the same framing")
            self.keyframes = gui.add_text("Keyframed path JSON", "", hint="Server path to a camera path JSON (overrides the preset)")
            self.num_frames = gui.add_slider("Frames", 8, 240, 1, 48)
            self.fps = gui.add_slider("Video FPS", 1, 60, 1, 24)
            self.fov = gui.add_slider("Field of view (deg)", 20, 120, 1, 60)
            self.freeze_time = gui.add_checkbox("Freeze time", False, hint="4D scenes: hold the frame shown now "
                                                "instead of playing the clip over the video")
            self.video_name = gui.add_text("Video file", "render.mp4")
            self.video_button = gui.add_button("Render MP4", icon=viser.Icon.MOVIE)
        with gui.add_folder("Keyframes"):
            self.editor = KeyframeEditor(app, gui, on_file=lambda path: setattr(self.keyframes, "value", str(path)))
        with gui.add_folder("View-dependent color"):
            self.bake = gui.add_checkbox("Bake SH for my view", True, hint="Scenes with SH degree > 0: recolor splats when the camera stops")
        self.still_button.on_click(self._render_still)
        self.clear_button.on_click(lambda e: app.set_background(app.background_rgb))
        self.video_button.on_click(self._render_video)
        self.keyframes.on_update(lambda e: app.set_keyframed_path(self.keyframes.value))
        self.bake.on_update(lambda e: self._bake_now(None if not self.bake.value else self._last_position))
        self.baker = ViewBaker(self._bake_now)
        self._last_position = None

    def refresh(self) -> None:
        pass  # nothing here mirrors the scene state

    # ------------------------------------------------------------ SH bake
    def attach_client(self, client: viser.ClientHandle) -> None:
        client_id = client.client_id  # the callback must not keep the handle alive after a disconnect

        @client.camera.on_update
        def _(camera) -> None:
            self._last_position = np.array(camera.position)
            if self.bake.value:
                self.baker.camera_moved(client_id, self._last_position)

    def detach_client(self, client: viser.ClientHandle) -> None:
        self.baker.forget(client.client_id)

    def stop(self) -> None:
        self.baker.stop()

    def _bake_now(self, position) -> None:
        if self.app.state.has_sh():
            self.app.state.set_view_position(position)
            self.app.refresh()

    # -------------------------------------------------------------- still
    def _camera_of(self, client: viser.ClientHandle) -> Camera:
        return Camera.from_viser(client.camera, height=int(self.height.value))

    def _look_options(self) -> dict:
        """``look`` and ``background`` for viewer.renders: a look's own background unless "standard"."""
        look = None if self.look.value == "auto" else self.look.value
        background = tuple(c / 255.0 for c in self.app.background_rgb) if look == "standard" else None
        return dict(look=look, background=background)

    def _render_still(self, event) -> None:
        client, app = event.client, self.app

        def run(job):
            camera = self._camera_of(client)
            job(0.1, f"rendering {camera.width}x{camera.height}")
            image = render_still(app.state, camera, **self._look_options())
            job(0.95, "showing")  # raises Cancelled if the client left meanwhile: nothing is shown
            app.server.scene.set_background_image(image, format="jpeg")
            return image.shape

        app.start_job("Render still", run, client, ends_with_client=True)  # its camera's client only

    # -------------------------------------------------------------- video
    def _render_video(self, event) -> None:
        client, app = event.client, self.app
        name = self.video_name.value.strip()
        target = app.action("Render MP4", lambda: resolve_inside(app.output_dir, name if name.endswith(".mp4") else name + ".mp4"), client)
        if target is None:
            return
        keyframed = self.keyframes.value.strip()
        trajectory = self.editor.path()  # the keyframes edited in the panel, when there are any
        if trajectory is None:
            trajectory = app.action("Render MP4", lambda: read_camera_path(app.paths, keyframed), client) if keyframed \
                else self.path.value  # a client's path is confined like Open path (viewer.open_path)
        if trajectory is None:
            return
        height = max(16, int(self.height.value) // 16 * 16)
        width = max(16, height * 16 // 9 // 16 * 16)
        options = dict(fps=float(self.fps.value), freeze_time=bool(self.freeze_time.value),
                       fov_y=math.radians(float(self.fov.value)), **self._look_options())
        frames = int(self.num_frames.value)

        def run(job):
            return render_path_video(app.state, trajectory, frames, width, height, target, progress=job, **options)

        app.start_job("Render MP4", run, client, on_done=lambda job: app.notify("Video written", str(job.result), client))

"""Scene panel: open by server path or browser upload, layers, info, background, camera reset."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import viser

from lyra.errors import SceneFileError

BACKGROUNDS = {"White": (255, 255, 255), "Black": (0, 0, 0)}
UPLOAD_SUFFIXES = (".ply", ".splat", ".zip", ".pt", ".pth")


def safe_upload_name(name: str) -> str:
    """A file name from a browser upload, stripped of folders and odd characters."""
    base = Path(name.replace("\\", "/")).name
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base or "upload"


class ScenePanel:
    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        with gui.add_folder("Open"):
            self.path = gui.add_text("Server path", "", hint="A PLY / compressed PLY / .splat / Lyra tensor file, a sequence folder or a zip of frames")
            self.drop_invalid = gui.add_checkbox("Drop invalid splats", False, hint="Open files with NaN/Inf values or zero quaternions by dropping those splats")
            self.open_button = gui.add_button("Open path", icon=viser.Icon.FOLDER_OPEN)
            self.upload = gui.add_upload_button("Upload scene", icon=viser.Icon.UPLOAD, hint="PLY, compressed PLY, .splat, Lyra tensor (.pt) or a zip of PLY frames")
        with gui.add_folder("Layers"):
            self.layer = gui.add_dropdown("Active", ["(none)"], initial_value="(none)")
            self.visible = gui.add_checkbox("Visible", True)
            self.remove_button = gui.add_button("Remove layer", icon=viser.Icon.TRASH, color="red")
            self.info = gui.add_markdown("No scene loaded.")
        with gui.add_folder("View"):
            self.background = gui.add_dropdown("Background", ["White", "Black", "Custom"], initial_value="White")
            self.custom_color = gui.add_rgb("Custom color", (40, 40, 48), visible=False)
            self.reset_camera = gui.add_button("Fit camera to scene", icon=viser.Icon.FOCUS_CENTERED)

        # A typed path opens as a confined job with a deadline (never on the callback thread).
        self.open_button.on_click(lambda e: app.open_path(self.path.value, e.client, self.drop_invalid.value))
        app.uploads.on_upload(self.upload, self._on_upload)  # size-checked while arriving; one value per upload
        self.layer.on_update(lambda e: self._on_layer(e))
        self.visible.on_update(lambda e: e.client is not None and app.action(
            "Visibility", lambda: app.state.set_visible(app.state.layer().name, self.visible.value), e.client))
        self.remove_button.on_click(lambda e: app.action("Remove layer", lambda: app.state.remove_scene(app.state.layer().name), e.client))
        self.background.on_update(lambda _: self._apply_background())
        self.custom_color.on_update(lambda _: self._apply_background())
        self.reset_camera.on_click(lambda e: app.fit_camera(e.client))
        self._refreshing = False

    def _on_upload(self, client_id: int, uploaded: viser.UploadedFile) -> None:
        app = self.app
        client = app.server.get_clients().get(client_id)

        def load_upload():
            if len(uploaded.content) > app.max_upload_bytes:
                raise SceneFileError(uploaded.name, f"an upload of at most {app.max_upload_bytes // (1024 * 1024)} MiB",
                                     f"{len(uploaded.content) / (1024 * 1024):.1f} MiB")
            name = safe_upload_name(uploaded.name)
            with tempfile.TemporaryDirectory(prefix="lyra-upload-") as tmp:
                path = Path(tmp) / name
                path.write_bytes(uploaded.content)
                return app.open_scene(path, name=Path(name).stem, drop_invalid=self.drop_invalid.value)

        app.action(f"Upload {uploaded.name}", load_upload, client)

    def _on_layer(self, event) -> None:
        if self._refreshing or event.client is None or self.layer.value == "(none)":
            return
        self.app.action("Select layer", lambda: self.app.state.set_active(self.layer.value), event.client)

    def _apply_background(self) -> None:
        self.custom_color.visible = self.background.value == "Custom"
        rgb = BACKGROUNDS.get(self.background.value, self.custom_color.value)
        self.app.set_background(rgb)

    def refresh(self) -> None:
        state = self.app.state
        with state.lock:
            names = list(state.layers) or ["(none)"]
            active = state.active or "(none)"
            layer = state.layers.get(state.active) if state.active else None
            info = self._describe(layer, state) if layer else "No scene loaded."
            visible = layer.visible if layer else True
        self._refreshing = True
        try:
            if tuple(self.layer.options) != tuple(names):
                self.layer.options = names
            if self.layer.value != active:
                self.layer.value = active
            if self.visible.value != visible:
                self.visible.value = visible
            self.info.content = info
        finally:
            self._refreshing = False

    @staticmethod
    def _describe(layer, state) -> str:
        frame = layer.frames[layer.frame_index(state.frame)]
        lo, hi = frame.gaussians.bounds()
        kind = f"sequence, {len(layer.frames)} frames at {layer.fps:g} fps" if layer.is_sequence else "static"
        return (
            f"**{layer.name}** ({kind})  \n"
            f"splats: {len(frame.gaussians):,} (frame), SH degree {layer.sh_degree}  \n"
            f"bounds: [{lo[0]:.2f}, {lo[1]:.2f}, {lo[2]:.2f}] to [{hi[0]:.2f}, {hi[1]:.2f}, {hi[2]:.2f}]"
        )

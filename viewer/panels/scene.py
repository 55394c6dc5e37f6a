"""Scene panel: open by server path or browser upload (replace the scene or add a layer), layers, info,
background, camera reset. Hidden layers are named in the info, so a scene that starts hidden is found."""

from __future__ import annotations

import viser

from lyra.errors import EditError
from viewer.uploads import safe_upload_name  # noqa: F401 - the Generate panel imports it from here

BACKGROUNDS = {"White": (255, 255, 255), "Black": (0, 0, 0)}
UPLOAD_SUFFIXES = (".ply", ".splat", ".zip", ".pt", ".pth")
OPEN_MODES = {"Replace the scene": True, "Add as a layer": False}  # label -> replace


class ScenePanel:
    key = "scene"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        with gui.add_folder("Open"):
            self.path = gui.add_text("Server path", "", hint="A PLY / compressed PLY / .splat / Lyra tensor file, a sequence folder or a zip of frames")
            self.open_mode = gui.add_dropdown("Open as", list(OPEN_MODES), initial_value="Replace the scene",
                                              hint="Replace every loaded layer, or add the scene on top as a new layer")
            self.drop_invalid = gui.add_checkbox("Drop invalid splats", False, hint="Open files with NaN/Inf values or zero quaternions by dropping those splats")
            self.open_button = gui.add_button("Open path", icon=viser.Icon.FOLDER_OPEN)
            self.open_note = gui.add_markdown(served_folders_note(app.paths))
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
            policy = app.state.display_policy()
            self.budget_paused = gui.add_number("Splat budget (paused)", policy.paused, min=1, step=50_000,
                                                hint="At most this many splats are sent to the browser, the most important "
                                                     "first; edits always act on every splat")
            self.budget_playing = gui.add_number("Splat budget (playing)", policy.playing, min=1, step=50_000,
                                                 hint="The same while a 4D scene plays, and for a second after a frame change")
            self.full_detail = gui.add_checkbox("Full detail when idle", policy.full_detail,
                                                hint="Paused and idle for a second: send up to the full-detail cap "
                                                     "instead of the paused budget")
            self.full_detail_cap = gui.add_number("Full detail cap", policy.full_detail_cap, min=1, step=100_000,
                                                  hint="At most this many splats in full detail")

        # A typed path opens as a confined job with a deadline (never on the callback thread).
        self.open_button.on_click(self._open_path)
        app.uploads.on_upload(self.upload, self._on_upload)  # size-checked while arriving; one value per upload
        self.layer.on_update(lambda e: self._on_layer(e))
        self.visible.on_update(lambda e: e.client is not None and app.action(
            "Visibility", lambda: app.state.set_visible(app.state.layer().name, self.visible.value), e.client))
        self.remove_button.on_click(lambda e: app.action("Remove layer", lambda: app.state.remove_scene(app.state.layer().name), e.client))
        self.background.on_update(lambda _: self._apply_background())
        for control in (self.budget_paused, self.budget_playing):
            control.on_update(lambda e: e.client is not None and app.action(
                "Splat budget", lambda: app.state.set_splat_budget(self.budget_paused.value, self.budget_playing.value), e.client))
        for control in (self.full_detail, self.full_detail_cap):
            control.on_update(lambda e: e.client is not None and app.action(
                "Full detail", lambda: app.state.set_full_detail(self.full_detail.value, self.full_detail_cap.value), e.client))
        self.custom_color.on_update(lambda _: self._apply_background())
        self.reset_camera.on_click(lambda e: app.action("Fit camera", lambda: app.fit_camera(e.client), e.client))
        self._refreshing = False

    def _open_path(self, event) -> None:
        """Open the typed path; a refusal stays written under the button (notifications close by themselves)."""
        def refused(reason: str) -> None:
            self.open_note.content = f"**Not opened.** {reason}"

        if self.app.open_path(self.path.value, event.client, self.drop_invalid.value, replace=self.replace,
                              on_refused=refused) is not None:
            self.open_note.content = served_folders_note(self.app.paths)

    def _on_upload(self, client_id: int, uploaded: viser.UploadedFile) -> None:
        """Written to disk here, then loaded as a job (progress, Cancel) like an Open by path."""
        client = self.app.server.get_clients().get(client_id)
        self.app.open_upload(uploaded, client, self.drop_invalid.value, replace=self.replace)

    @property
    def replace(self) -> bool:
        """Whether opening replaces the loaded layers (else adds one)."""
        return OPEN_MODES[self.open_mode.value]

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
        names = state.layer_names() or ["(none)"]
        try:
            layer = state.layer_info()
        except EditError:  # nothing loaded (or the active layer was just removed)
            layer = None
        info = describe(layer, state.hidden_layers()) if layer else "No scene loaded."
        visible, active = (layer.visible, layer.name) if layer else (True, "(none)")
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


def served_folders_note(paths) -> str:
    """What Open path accepts (a :class:`viewer.open_path.PathConfinement`), said before anyone is refused."""
    if paths.anywhere:
        return "_Any server path opens (the viewer runs with --open-anywhere)._"
    return ("_Server paths open only inside the folders this viewer serves: its command-line scenes and "
            "--data-dir folders (or an upload from your browser)._")


def describe(info, hidden: list[str]) -> str:
    """Markdown about the active layer (a :class:`viewer.state.LayerInfo`) and the hidden layers."""
    (lo, hi) = info.bounds
    kind = f"sequence, {info.num_frames} frames at {info.fps:g} fps" if info.is_sequence else "static"
    text = (
        f"**{info.name}** ({kind}{'' if info.visible else ', hidden'})  \n"
        f"splats: {info.splats:,} (frame), SH degree {info.sh_degree}  \n"
        f"bounds: [{lo[0]:.2f}, {lo[1]:.2f}, {lo[2]:.2f}] to [{hi[0]:.2f}, {hi[1]:.2f}, {hi[2]:.2f}]"
    )
    if hidden:
        text += f"  \n_Hidden: {', '.join(hidden)}_. Choose it under Active and tick Visible to show it."
    return text

"""Export panel: write the edited layer to the output folder, or send it to the browser as a download.

Formats come from the library's table (:data:`lyra.scene.formats.FORMAT_TABLE`): PLY, SPZ, SOG,
glTF (``.glb``), USD(Z), sequence folders. A 4D layer defaults to a sequence; a single-frame format
writes the frame shown now, named and announced so (``sequence-glb`` and USD keep every frame).
Each export is a job with progress and cancel in the jobs panel; writes are atomic.
The layer follows the one last edited or selected (the active layer) whenever that changes, so an
edit is never followed by a save of some other, perhaps hidden, layer. Every save is confirmed with
its path and size, in a notification and in the panel.
Two more actions (not formats) use the same name and overwrite box: "Mesh / collider" (a triangle
mesh of the frame shown now, :mod:`lyra.scene.mesh`) and "Share page" (one offline HTML file of the
whole layer, :mod:`lyra.render.share`). Each runs as a job with progress and cancel.
"""

from __future__ import annotations

import viser

from lyra.errors import EditError
from lyra.progress import subrange
from lyra.scene.formats import FORMAT_TABLE, writable_formats
from viewer.export import (
    default_format,
    describe_size,
    export_bytes,
    export_to_server,
    mesh_to_server,
    share_page_to_server,
    written_bytes,
)

MESH_SUFFIXES = (".ply", ".obj", ".glb")


class ExportPanel:
    key = "export"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        gui.add_markdown(f"Server exports go under `{app.output_dir}`. Deleted splats are dropped.")
        self.layer = gui.add_dropdown("Layer", ["(none)"], initial_value="(none)")
        hint = "; ".join(f"{name}: {FORMAT_TABLE[name].label}" for name in writable_formats())
        self.format = gui.add_dropdown("Format", writable_formats(), initial_value="ply",
                                       hint=hint + ". A single-frame format takes the frame shown now of a 4D layer.")
        self.name = gui.add_text("File name", "edited")
        self.overwrite = gui.add_checkbox("Overwrite", False)
        self.usd_collider = gui.add_checkbox("USD: add a collider", False,
                                             hint="USD(Z) only: an invisible collision mesh (UsdPhysics) for Isaac Sim")
        self.save_button = gui.add_button("Save on server", icon=viser.Icon.DEVICE_FLOPPY)
        self.download_button = gui.add_button("Download", icon=viser.Icon.DOWNLOAD)
        self.saved = gui.add_markdown("")  # the last save, kept (notifications close by themselves)
        self.save_button.on_click(self._save)
        self.download_button.on_click(self._download)
        with gui.add_folder("Mesh / collider", expand_by_default=False):
            self.mesh_format = gui.add_dropdown("Mesh format", MESH_SUFFIXES, initial_value=".ply")
            self.mesh_faces = gui.add_number("Max faces", 0, min=0, step=1000,
                                             hint="decimate to at most this many faces (0: keep all; collider: 2000)")
            self.collider = gui.add_checkbox("Collider", False,
                                             hint="a coarse, closed, simplified mesh for physics instead of the surface")
            self.mesh_button = gui.add_button("Make mesh", icon=viser.Icon.CUBE,
                                              hint="the frame shown now of a 4D layer")
        with gui.add_folder("Share page", expand_by_default=False):
            self.max_mb = gui.add_number("Max MB", 50.0, min=1.0, step=1.0,
                                         hint="a larger page is decimated to fit, and says so")
            self.share_button = gui.add_button("Write share page", icon=viser.Icon.WORLD,
                                               hint="one HTML file that shows the scene offline (every frame of 4D)")
        self.mesh_button.on_click(self._mesh)
        self.share_button.on_click(self._share)
        self.layer.on_update(lambda _: self.refresh())  # a newly chosen layer gets its default format
        self._format_chosen_for: str | None = None  # the layer the format default was last chosen for
        self._followed_active: str | None = None  # the active layer the dropdown last followed

    def _layer(self):
        return None if self.layer.value == "(none)" else self.layer.value

    def _frame_note(self, layer: str | None, fmt: str) -> str:
        """What a user must know when a single frame of a 4D layer is written."""
        info = self.app.state.layer_info(layer)
        if not info.is_sequence or FORMAT_TABLE[fmt].sequence:
            return ""
        frame = self.app.state.time_info().frame
        return f" (frame {frame + 1} of {info.num_frames} only; choose 'sequence' for every frame)"

    def _save(self, event) -> None:
        app, layer, fmt, name, overwrite = self.app, self._layer(), self.format.value, self.name.value, self.overwrite.value
        collider = bool(self.usd_collider.value) and fmt == "usd"

        def run(job):
            note = self._frame_note(layer, fmt)
            job(0.05, "writing")
            path = export_to_server(app.state, layer, app.output_dir, name, fmt, overwrite,
                                    progress=subrange(job, 0.05, 1.0), collider=collider)
            return f"{path} ({describe_size(written_bytes(path))}){note}"

        def done(job) -> None:
            self.saved.content = f"Saved `{layer}` to {job.result}"
            app.notify("Saved", f"Wrote {job.result}", event.client)

        app.start_job("Export", run, event.client, on_done=done)

    def _download(self, event) -> None:
        app, layer, fmt, name, client = self.app, self._layer(), self.format.value, self.name.value, event.client

        def run(job):
            note = self._frame_note(layer, fmt)
            job(0.05, "packing")
            filename, content = export_bytes(app.state, layer, name, fmt, progress=subrange(job, 0.05, 0.6))
            job(0.6, f"sending {len(content) / 1e6:.1f} MB")
            client.send_file_download(filename, content, save_immediately=True)
            return f"{filename} ({describe_size(len(content))}){note}"

        def done(job) -> None:
            self.saved.content = f"Sent `{layer}` to the browser as {job.result}"
            app.notify("Downloaded", str(job.result), client)

        app.start_job("Download", run, client, on_done=done)

    def _mesh(self, event) -> None:
        app, layer, name, overwrite = self.app, self._layer(), self.name.value, self.overwrite.value
        suffix, collider, faces = self.mesh_format.value, self.collider.value, int(self.mesh_faces.value) or None

        def run(job):
            return mesh_to_server(app.state, layer, app.output_dir, name, suffix, collider=collider, max_faces=faces,
                                  overwrite=overwrite, progress=job)  # a 4D layer's frame is in the name

        app.start_job("Collider" if collider else "Mesh", run, event.client,
                      on_done=lambda job: app.notify("Mesh written", f"Wrote {job.result}", event.client))

    def _share(self, event) -> None:
        app, layer, name, overwrite, max_mb = self.app, self._layer(), self.name.value, self.overwrite.value, self.max_mb.value

        def run(job):
            path, page = share_page_to_server(app.state, layer, app.output_dir, name, max_mb=float(max_mb),
                                              overwrite=overwrite, progress=job)
            return " ".join([f"{path} ({page.size_bytes / 1e6:.1f} MB).", *page.notes])

        app.start_job("Share page", run, event.client,
                      on_done=lambda job: app.notify("Share page written", f"Wrote {job.result}", event.client))

    def refresh(self) -> None:
        state = self.app.state
        names = state.layer_names() or ["(none)"]
        active = state.active_name() or "(none)"
        if tuple(self.layer.options) != tuple(names):
            self.layer.options = names
        # Follow the layer last edited or selected; a layer picked here stays until that changes.
        if active != self._followed_active or self.layer.value not in names:
            self.layer.value = active
            self._followed_active = active
        layer = self._layer()
        if layer is not None and layer != self._format_chosen_for:
            try:
                self.format.value = default_format(state.layer_info(layer).is_sequence)
            except EditError:  # removed meanwhile
                return
            self._format_chosen_for = layer

"""Export panel: write the edited layer to the output folder, or send it to the browser as a download.

Formats come from the library's table (:data:`lyra.scene.formats.FORMAT_TABLE`): PLY, SPZ, SOG,
glTF (``.glb``), USD(Z), sequence folders. A 4D layer defaults to a sequence; a single-frame format
writes the frame shown now, named and announced so (``sequence-glb`` and USD keep every frame).
Each export is a job with progress and cancel in the jobs panel; writes are atomic.
"""

from __future__ import annotations

import viser

from lyra.errors import EditError
from lyra.progress import subrange
from lyra.scene.formats import FORMAT_TABLE, writable_formats
from viewer.export import default_format, export_bytes, export_to_server


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
        self.save_button = gui.add_button("Save on server", icon=viser.Icon.DEVICE_FLOPPY)
        self.download_button = gui.add_button("Download", icon=viser.Icon.DOWNLOAD)
        self.save_button.on_click(self._save)
        self.download_button.on_click(self._download)
        self.layer.on_update(lambda _: self.refresh())  # a newly chosen layer gets its default format
        self._format_chosen_for: str | None = None  # the layer the format default was last chosen for

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

        def run(job):
            note = self._frame_note(layer, fmt)
            job(0.05, "writing")
            written = export_to_server(app.state, layer, app.output_dir, name, fmt, overwrite, progress=subrange(job, 0.05, 1.0))
            return f"{written}{note}"

        app.start_job("Export", run, event.client,
                      on_done=lambda job: app.notify("Exported", f"Wrote {job.result}", event.client))

    def _download(self, event) -> None:
        app, layer, fmt, name, client = self.app, self._layer(), self.format.value, self.name.value, event.client

        def run(job):
            note = self._frame_note(layer, fmt)
            job(0.05, "packing")
            filename, content = export_bytes(app.state, layer, name, fmt, progress=subrange(job, 0.05, 0.6))
            job(0.6, f"sending {len(content) / 1e6:.1f} MB")
            client.send_file_download(filename, content, save_immediately=True)
            return f"{filename}{note}"

        app.start_job("Download", run, client, on_done=lambda job: app.notify("Downloaded", str(job.result), client))

    def refresh(self) -> None:
        state = self.app.state
        names = state.layer_names() or ["(none)"]
        active = state.active_name() or "(none)"
        if tuple(self.layer.options) != tuple(names):
            self.layer.options = names
            self.layer.value = active
        elif self.layer.value not in names:
            self.layer.value = active
        layer = self._layer()
        if layer is not None and layer != self._format_chosen_for:
            try:
                self.format.value = default_format(state.layer_info(layer).is_sequence)
            except EditError:  # removed meanwhile
                return
            self._format_chosen_for = layer

"""Export panel: write the edited layer to the output folder, or send it to the browser as a download."""

from __future__ import annotations

import viser

from viewer.export import EXPORT_FORMATS, export_bytes, export_to_server


class ExportPanel:
    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        gui.add_markdown(f"Server exports go under `{app.output_dir}`. Deleted splats are dropped.")
        self.layer = gui.add_dropdown("Layer", ["(none)"], initial_value="(none)")
        self.format = gui.add_dropdown("Format", list(EXPORT_FORMATS), initial_value="ply",
                                       hint="ply keeps SH; a sequence is a folder of PLY frames (a zip when downloaded); "
                                            "other formats take the current frame of a sequence")
        self.name = gui.add_text("File name", "edited")
        self.overwrite = gui.add_checkbox("Overwrite", False)
        self.save_button = gui.add_button("Save on server", icon=viser.Icon.DEVICE_FLOPPY)
        self.download_button = gui.add_button("Download", icon=viser.Icon.DOWNLOAD)
        self.save_button.on_click(self._save)
        self.download_button.on_click(self._download)

    def _layer(self):
        return None if self.layer.value == "(none)" else self.layer.value

    def _save(self, event) -> None:
        app, layer, fmt, name, overwrite = self.app, self._layer(), self.format.value, self.name.value, self.overwrite.value

        def run(job):
            job.progress(0.1, "writing")
            return export_to_server(app.state, layer, app.output_dir, name, fmt, overwrite)

        app.start_job("Export", run, event.client,
                      on_done=lambda job: app.notify("Exported", f"Wrote {job.result}", event.client))

    def _download(self, event) -> None:
        app, layer, fmt, name, client = self.app, self._layer(), self.format.value, self.name.value, event.client

        def run(job):
            job.progress(0.1, "packing")
            filename, content = export_bytes(app.state, layer, name, fmt)
            job.progress(0.6, f"sending {len(content) / 1e6:.1f} MB")
            client.send_file_download(filename, content, save_immediately=True)
            return filename

        app.start_job("Download", run, client)

    def refresh(self) -> None:
        with self.app.state.lock:
            names = list(self.app.state.layers) or ["(none)"]
            active = self.app.state.active or "(none)"
        if tuple(self.layer.options) != tuple(names):
            self.layer.options = names
            self.layer.value = active
        elif self.layer.value not in names:
            self.layer.value = active

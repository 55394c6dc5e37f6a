"""Distill panel: open a decoder checkpoint and a data folder, see its decoded held-out scenes as layers.

Both are server paths, confined like Open path (:mod:`viewer.open_path`). Decoding runs as a
job (its own row, progress, Cancel); each held-out scene becomes a layer named
``<scene> (student)`` in world coordinates, so a scene's true geometry or another checkpoint's
decode can be compared layer against layer.
"""

from __future__ import annotations

from pathlib import Path

import viser

from lyra.errors import InputDataError, LyraError
from lyra.render.framing import frame_scene


class DistillPanel:
    key = "distill"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        self.checkpoint = gui.add_text("Checkpoint", "", hint="A decoder folder (model.safetensors + config.yaml), "
                                       "e.g. a training run's checkpoint/, or an official .pt")
        self.data = gui.add_text("Data folder", "", hint="SDG data (a root with eval/, or a folder of scenes)")
        self.tokenizer = gui.add_text("Tokenizer (optional)", "", hint="Cosmos tokenizer folder; default: tokenizer/ "
                                      "beside the data")
        self.views = gui.add_slider("Input views", 1, 6, 1, 1)
        self.scenes = gui.add_slider("Scenes", 1, 16, 1, 4)
        self.button = gui.add_button("Decode held-out scenes", icon=viser.Icon.SCHOOL)
        self.button.on_click(self._on_decode)

    def refresh(self) -> None:
        pass  # the panel mirrors no scene state

    def _request(self) -> dict:
        confine = self.app.paths.check
        if not self.checkpoint.value.strip() or not self.data.value.strip():
            raise InputDataError("give a checkpoint and a data folder (server paths)")
        data = confine(self.data.value)
        tokenizer = confine(self.tokenizer.value) if self.tokenizer.value.strip() else self._default_tokenizer(data)
        return dict(checkpoint=confine(self.checkpoint.value), data=data, tokenizer=tokenizer,
                    views=int(self.views.value), max_scenes=int(self.scenes.value))

    def _default_tokenizer(self, data) -> Path:
        """The data's own tokenizer/, looked for only where a client may read: never above the served folders."""
        from lyra.distill.evaluate import tokenizer_candidates

        for candidate in tokenizer_candidates(data):
            try:
                allowed = self.app.paths.check(str(candidate))
            except LyraError:
                continue
            if (allowed / "config.json").is_file():
                return allowed
        raise InputDataError(f"no tokenizer/ found beside {data} inside the folders this viewer serves; "
                             "give the Cosmos tokenizer folder")

    def _on_decode(self, event) -> None:
        app = self.app
        request = app.action("Decode held-out scenes", self._request, event.client)
        if request is None:
            return

        def run(job):
            from lyra.distill.evaluate import held_out_scenes

            return held_out_scenes(**request, progress=job)

        def done(job):
            app.action("Open the decoded scenes", lambda: self.show(job.result, str(request["checkpoint"])), event.client)

        app.start_job("Decode held-out scenes", run, event.client, on_done=done)

    def show(self, scenes, source: str) -> list[str]:
        layers = [self.app.add_scene_layer(g, f"{name} (student)", source=source) for name, g in scenes]
        if scenes:
            framing = frame_scene(scenes[0][1])
            for client in self.app.server.get_clients().values():
                self.app.place_camera(client, framing)
        self.app.notify("Decoded", f"{len(layers)} held-out scenes as layers")
        return layers

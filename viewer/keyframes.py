"""The Render panel's keyframe editor: build a camera path from the browser's views, reorder it, save/load its JSON.

The keyframes are a :class:`lyra.render.paths.CameraPath` being edited (the JSON format of
``lyra render --trajectory PATH.json``, see README "Camera paths"). "Add keyframe from this view"
takes the clicking browser's camera (position, orientation, vertical fov); a keyframe chosen in
the dropdown can be moved up or down or deleted. While there are keyframes, "Render MP4" follows
them. Saving writes ``NAME.json`` inside the output folder only, atomically, and never replaces a
file that is not a camera path; loading reads through :func:`camera_path_source`, the one place that
decides which paths a client may read a camera path from.
"""

from __future__ import annotations

import threading
from pathlib import Path

import viser

from lyra.errors import CameraPathError, EditError
from lyra.render.camera import Camera
from lyra.render.paths import CameraPath, Keyframe
from viewer.export import resolve_inside
from viewer.open_path import read_camera_path

NONE = "(none)"


def camera_path_source(app, raw: str) -> Path:
    """The file a client may load a camera path from: a name relative to the output folder (where the
    editor saves), or a path inside the folders the viewer serves (:class:`viewer.open_path.PathConfinement`).
    SceneFileError / CameraPathError otherwise, before the file is touched."""
    raw = raw.strip()
    if not raw:
        raise CameraPathError("type the camera-path JSON file to load (a name in the output folder, or a served path)")
    return app.paths.check(raw) if Path(raw).expanduser().is_absolute() else resolve_inside(app.output_dir, raw)


def camera_path_target(app, name: str) -> Path:
    """Where "Save path JSON" writes ``name``: inside the output folder, ``.json`` added when missing.
    CameraPathError when it would replace a file that is not a camera path."""
    name = name.strip()
    target = resolve_inside(app.output_dir, name if name.lower().endswith(".json") else name + ".json")
    if target.exists():
        try:
            CameraPath.load(target)
        except CameraPathError as exc:
            raise CameraPathError(f"{target} exists and is not a camera path; choose another name") from exc
    return target


def describe_keyframes(keyframes: list[Keyframe]) -> str:
    """Markdown list of the keyframes (1-based, as the dropdown numbers them)."""
    if not keyframes:
        return "_No keyframes: Render MP4 follows the camera path above._"
    lines = [f"{i + 1}. at ({k.position[0]:.2f}, {k.position[1]:.2f}, {k.position[2]:.2f}), fov {k.fov_deg:.0f}°"
             for i, k in enumerate(keyframes)]
    return f"Render MP4 follows these {len(keyframes)} keyframes:\n\n" + "\n".join(lines)


class KeyframeEditor:
    """Widgets and list of the keyframes; part of :class:`viewer.panels.render.RenderPanel`.

    ``on_file(path)`` is told of every camera-path file saved or loaded (the Render panel shows it).
    """

    def __init__(self, app, gui, on_file=None):
        self.app = app
        self.on_file = on_file or (lambda path: None)
        self.keyframes: list[Keyframe] = []
        self.loop = False
        self._lock = threading.Lock()
        self.add_button = gui.add_button("Add keyframe from this view", icon=viser.Icon.CAMERA_PLUS)
        self.listing = gui.add_markdown(describe_keyframes([]))
        self.chosen = gui.add_dropdown("Keyframe", [NONE], initial_value=NONE)
        self.up_button = gui.add_button("Move up", icon=viser.Icon.ARROW_UP)
        self.down_button = gui.add_button("Move down", icon=viser.Icon.ARROW_DOWN)
        self.delete_button = gui.add_button("Delete keyframe", icon=viser.Icon.TRASH, color="red")
        self.file = gui.add_text("Path file", "camera_path.json", hint="A name in the output folder (save and load), "
                                 "or a served path to load")
        self.save_button = gui.add_button("Save path JSON", icon=viser.Icon.DEVICE_FLOPPY)
        self.load_button = gui.add_button("Load path JSON", icon=viser.Icon.FOLDER_OPEN)
        self.add_button.on_click(lambda e: app.action("Add keyframe", lambda: self.add_from_camera(e.client.camera), e.client))
        self.up_button.on_click(lambda e: app.action("Move keyframe", lambda: self.move(-1), e.client))
        self.down_button.on_click(lambda e: app.action("Move keyframe", lambda: self.move(+1), e.client))
        self.delete_button.on_click(lambda e: app.action("Delete keyframe", self.delete, e.client))
        self.save_button.on_click(lambda e: app.action("Save camera path", self.save, e.client))
        self.load_button.on_click(lambda e: app.action("Load camera path", self.load, e.client))

    # ---------------------------------------------------------------- edits
    def add_from_camera(self, camera) -> int:
        """Append the view of ``camera`` (a viser camera handle) after the chosen keyframe; returns its 1-based index."""
        keyframe = Keyframe.from_camera(Camera.from_viser(camera))
        with self._lock:
            index = self._chosen_index()
            at = len(self.keyframes) if index is None else index + 1
            self.keyframes.insert(at, keyframe)
            self._show(at)
        return at + 1

    def move(self, offset: int) -> None:
        """Move the chosen keyframe ``offset`` places (-1: earlier, +1: later)."""
        with self._lock:
            index = self._require_chosen()
            target = index + offset
            if not 0 <= target < len(self.keyframes):
                raise EditError(f"keyframe {index + 1} is already the {'first' if offset < 0 else 'last'}")
            self.keyframes[index], self.keyframes[target] = self.keyframes[target], self.keyframes[index]
            self._show(target)

    def delete(self) -> None:
        with self._lock:
            index = self._require_chosen()
            del self.keyframes[index]
            self._show(min(index, len(self.keyframes) - 1) if self.keyframes else None)

    def path(self) -> CameraPath | None:
        """The keyframes as a camera path (None when there are none)."""
        with self._lock:
            return CameraPath(list(self.keyframes), loop=self.loop) if self.keyframes else None

    # ----------------------------------------------------------------- files
    def save(self) -> Path:
        path = self.path()
        if path is None:
            raise EditError("no keyframes to save: add one from a view first")
        target = path.save(camera_path_target(self.app, self.file.value))
        self.file.value = target.relative_to(self.app.output_dir).as_posix()  # what Load reads back
        self.app.notify("Camera path saved", f"Wrote {target} ({len(path.keyframes)} keyframes)")
        self.on_file(target)
        return target

    def load(self) -> CameraPath:
        source = camera_path_source(self.app, self.file.value)
        # a served path is read as Open path reads (FIFOs refused, symlinks not followed, size capped)
        loaded = read_camera_path(self.app.paths, str(source)) if source.is_absolute() and \
            Path(self.file.value.strip()).expanduser().is_absolute() else CameraPath.load(source)
        with self._lock:
            self.keyframes, self.loop = list(loaded.keyframes), loaded.loop
            self._show(0)
        self.on_file(source)
        return loaded

    # --------------------------------------------------------------- helpers
    def _chosen_index(self) -> int | None:
        value = self.chosen.value
        return None if value == NONE or not value.isdigit() else int(value) - 1

    def _require_chosen(self) -> int:
        index = self._chosen_index()
        if index is None or index >= len(self.keyframes):
            raise EditError("choose a keyframe first")
        return index

    def _show(self, chosen: int | None) -> None:
        """Mirror the list in the widgets, with keyframe ``chosen`` (0-based) picked."""
        options = [str(i + 1) for i in range(len(self.keyframes))] or [NONE]
        self.chosen.options = options
        self.chosen.value = NONE if chosen is None else str(chosen + 1)
        self.listing.content = describe_keyframes(self.keyframes)

"""Export an edited layer: to a server path confined to the output folder, or as bytes for a browser download.

Soft deletes are applied (:meth:`viewer.state.AppState.edited_scene`); every
write goes through :func:`lyra.scene.save` (atomic). Paths are relative to the
output folder; an absolute path or one that resolves outside it (``..``,
symlinks) is refused, as is an existing target unless ``overwrite``.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

from lyra import fileio
from lyra.errors import SceneFileError
from lyra.scene import GaussianSequence, save
from viewer.state import AppState

EXPORT_FORMATS = {"ply": ".ply", "ply-compressed": ".compressed.ply", "splat": ".splat", "sequence": ""}


def check_file_name(name: str) -> str:
    """``name`` stripped; SceneFileError if it is empty, does not end in a real file name, is too long
    or deep, or holds control or invisible formatting characters (:func:`lyra.fileio.check_file_name`)."""
    return fileio.check_file_name(name.strip())


def resolve_inside(output_dir: str | os.PathLike, name: str) -> Path:
    """``output_dir / name`` resolved; SceneFileError for an empty, absolute or escaping name."""
    name = check_file_name(name)
    if Path(name).is_absolute() or name.startswith("~") or (len(name) > 1 and name[1] == ":"):
        raise SceneFileError(name, "a path relative to the output folder", "an absolute path")
    root = Path(output_dir).expanduser().resolve()
    target = (root / name).resolve()
    if root not in target.parents:
        raise SceneFileError(name, f"a path inside the output folder {root}", "a path outside it")
    return target


def resolve_export_path(output_dir: str | os.PathLike, name: str, fmt: str) -> Path:
    """The target path for ``name`` in format ``fmt`` inside ``output_dir`` (extension added if missing)."""
    if fmt not in EXPORT_FORMATS:
        raise SceneFileError(name, f"a format among {sorted(EXPORT_FORMATS)}", repr(fmt))
    suffix = EXPORT_FORMATS[fmt]
    name = check_file_name(name)
    if suffix == ".compressed.ply" and name.lower().endswith(".ply") and not name.lower().endswith(suffix):
        name = name[: -len(".ply")]
    if suffix and not name.lower().endswith(suffix):
        name += suffix
    return resolve_inside(output_dir, name)


def scene_for_format(state: AppState, layer: str | None, fmt: str):
    """The edited scene in a shape ``fmt`` can hold: a sequence for ``sequence``, else the current frame.

    Read under one lock, so a time scrub or layer change cannot slip between the two reads.
    """
    with state.lock:
        scene = state.edited_scene(layer)
        if fmt == "sequence":
            return scene if isinstance(scene, GaussianSequence) else GaussianSequence([scene])
        if isinstance(scene, GaussianSequence):
            return scene.frames[state.layer(layer).frame_index(state.frame)]
        return scene


def export_to_server(state: AppState, layer: str | None, output_dir: str | os.PathLike, name: str, fmt: str,
                     overwrite: bool = False) -> Path:
    """Write the edited layer under ``output_dir``; returns the path written."""
    target = resolve_export_path(output_dir, name, fmt)
    if target.exists() and not overwrite:
        raise SceneFileError(target, "a new path (tick overwrite to replace it)", "an existing file")
    return save(scene_for_format(state, layer, fmt), target, format=fmt, overwrite=overwrite)


def export_bytes(state: AppState, layer: str | None, name: str, fmt: str) -> tuple[str, bytes]:
    """``(file name, content)`` for a browser download; a sequence comes as a zip of its folder."""
    scene = scene_for_format(state, layer, fmt)
    with tempfile.TemporaryDirectory(prefix="lyra-export-") as tmp:
        target = resolve_export_path(tmp, Path(name).name or "scene", fmt)
        save(scene, target, format=fmt, overwrite=True)
        if fmt != "sequence":
            return target.name, target.read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{target.name}/{path.relative_to(target).as_posix()}")
        return target.name + ".zip", buffer.getvalue()

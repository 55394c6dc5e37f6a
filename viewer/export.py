"""Export an edited layer: to a server path confined to the output folder, or as bytes for a browser download;
also its mesh or collider (:mod:`lyra.scene.mesh`) and its share page (:mod:`lyra.render.share`), which are
actions, not splat formats.

Soft deletes are applied (:meth:`viewer.state.AppState.edited_scene`); every
write goes through :func:`lyra.scene.save` (atomic). Format names and name
endings come from the library's one table, :data:`lyra.scene.formats.FORMAT_TABLE`.
A single-frame format asked of a 4D layer writes the frame shown now, with
its index in the file name (``NAME_frame0003.ply``), so nobody mistakes it
for the whole clip. Paths are relative to the
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
from lyra.progress import Progress, subrange
from lyra.scene import GaussianSequence, save
from lyra.scene.formats import FORMAT_TABLE, writable_formats
from viewer.state import AppState


def default_format(is_sequence: bool) -> str:
    """What the Export panel offers first: every frame for a 4D layer, a PLY for a static one."""
    return next(f for f in writable_formats() if FORMAT_TABLE[f].sequence) if is_sequence else "ply"


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


def named_path(output_dir: str | os.PathLike, name: str, suffix: str, known: tuple[str, ...],
            frame: int | None = None) -> Path:
    """``NAME[_frameNNNN]SUFFIX`` inside ``output_dir`` (a known ending on ``name`` is dropped first)."""
    name = check_file_name(name)
    for other in known:
        if name.lower().endswith(other):
            name = name[: -len(other)]
            break
    if frame is not None:
        name += f"_frame{frame:04d}"
    return resolve_inside(output_dir, name + suffix)


def resolve_export_path(output_dir: str | os.PathLike, name: str, fmt: str, frame: int | None = None) -> Path:
    """The target path for ``name`` in format ``fmt`` inside ``output_dir`` (extension added if missing;
    ``frame``: ``_frameNNNN`` put before it)."""
    if fmt not in writable_formats():
        raise SceneFileError(name, f"a format among {writable_formats()}", repr(fmt))
    spec = FORMAT_TABLE[fmt]
    # A name with one of the format's own endings keeps it (scene.usda stays text USD); "x.ply" asked as
    # compressed PLY means x.compressed.ply: any other known ending is dropped first.
    suffix = next((e for e in sorted(spec.endings(), key=len, reverse=True) if name.lower().endswith(e)), spec.suffix)
    known = tuple(sorted((e for s in FORMAT_TABLE.values() for e in s.endings()), key=len, reverse=True))
    return named_path(output_dir, name, suffix, known, frame)


def scene_for_format(state: AppState, layer: str | None, fmt: str):
    """``(scene, frame)``: the edited scene in a shape ``fmt`` can hold, and the frame index taken
    when a single-frame format was asked of a 4D layer (else None).

    Formats that hold every frame (sequence folders, USD) take a static scene as it is.
    Read under one lock, so a time scrub or layer change cannot slip between the two reads.
    """
    with state.lock:
        scene = state.edited_scene(layer)
        if FORMAT_TABLE[fmt].sequence:
            return scene, None
        if isinstance(scene, GaussianSequence):
            index = state.layer(layer).frame_index(state.frame)
            return scene.frames[index], index
        return scene, None


def export_to_server(state: AppState, layer: str | None, output_dir: str | os.PathLike, name: str, fmt: str,
                     overwrite: bool = False, progress: Progress | None = None, *, collider: bool = False) -> Path:
    """Write the edited layer under ``output_dir``; returns the path written. ``progress`` may cancel
    (:class:`lyra.progress.Cancelled`); writes are atomic, so a cancelled export leaves nothing behind.
    ``collider`` (USD only): embed a collision mesh (:func:`lyra.scene.mesh.scene_collider`)."""
    if fmt not in writable_formats():
        raise SceneFileError(name, f"a format among {writable_formats()}", repr(fmt))
    if collider and fmt != "usd":
        raise SceneFileError(name, "the USD format for a collider", repr(fmt))
    scene, frame = scene_for_format(state, layer, fmt)
    target = resolve_export_path(output_dir, name, fmt, frame)
    if target.exists() and not overwrite:
        raise SceneFileError(target, "a new path (tick overwrite to replace it)", "an existing file")
    options = {}
    if collider:
        from lyra.scene.mesh import scene_collider

        options["collider"] = scene_collider(scene, progress=subrange(progress, 0.0, 0.5))
        progress = subrange(progress, 0.5, 1.0)
    return save(scene, target, format=fmt, overwrite=overwrite, progress=progress, **options)


def written_bytes(path: str | os.PathLike) -> int:
    """Bytes on disk of an exported file, or of every file in an exported sequence folder."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def describe_size(size: int) -> str:
    """``size`` bytes for people: ``812 bytes``, ``14.2 KB``, ``3.4 MB``, ``1.20 GB`` (powers of 1000)."""
    if size < 1000:
        return f"{size} bytes"
    for unit, scale in (("KB", 1e3), ("MB", 1e6)):
        if size < 1000 * scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e9:.2f} GB"


def export_bytes(state: AppState, layer: str | None, name: str, fmt: str,
                 progress: Progress | None = None) -> tuple[str, bytes]:
    """``(file name, content)`` for a browser download; a folder (a sequence) comes as a zip of it."""
    if fmt not in writable_formats():
        raise SceneFileError(name, f"a format among {writable_formats()}", repr(fmt))
    scene, frame = scene_for_format(state, layer, fmt)
    with tempfile.TemporaryDirectory(prefix="lyra-export-") as tmp:
        target = resolve_export_path(tmp, Path(name).name or "scene", fmt, frame)
        save(scene, target, format=fmt, overwrite=True, progress=progress)
        if not target.is_dir():
            return target.name, target.read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{target.name}/{path.relative_to(target).as_posix()}")
        return target.name + ".zip", buffer.getvalue()

def _frame_scene(state: AppState, layer: str | None):
    """``(gaussians, frame)``: the edited layer, or the frame shown now of a 4D layer (and its index)."""
    with state.lock:
        scene = state.edited_scene(layer)
        if isinstance(scene, GaussianSequence):
            index = state.layer(layer).frame_index(state.frame)
            return scene.frames[index], index
        return scene, None


def mesh_to_server(state: AppState, layer: str | None, output_dir: str | os.PathLike, name: str, suffix: str = ".ply",
                   *, collider: bool = False, max_faces: int | None = None, overwrite: bool = False,
                   progress=None) -> Path:
    """A mesh (or with ``collider`` the coarse collision mesh) of the edited layer under ``output_dir``
    (:mod:`lyra.scene.mesh`; the frame shown now of a 4D layer, named ``NAME_frameNNNN``); returns the path."""
    import trimesh

    from lyra.scene.mesh import COLLIDER_FACES, MESH_SUFFIXES, collider_from_gaussians, mesh_from_gaussians, write_mesh

    if suffix not in MESH_SUFFIXES:
        raise SceneFileError(name, f"a mesh format among {', '.join(MESH_SUFFIXES)}", repr(suffix))
    gaussians, frame = _frame_scene(state, layer)
    target = named_path(output_dir, name, suffix, tuple(MESH_SUFFIXES), frame)
    if target.exists() and not overwrite:
        raise SceneFileError(target, "a new path (tick overwrite to replace it)", "an existing file")
    if collider:
        vertices, faces = collider_from_gaussians(gaussians, max_faces=max_faces or COLLIDER_FACES, progress=progress)
        mesh = trimesh.Trimesh(vertices, faces, process=False)
    else:
        mesh = mesh_from_gaussians(gaussians, max_faces=max_faces, progress=progress)
    return write_mesh(mesh, target, overwrite=overwrite)


def share_page_to_server(state: AppState, layer: str | None, output_dir: str | os.PathLike, name: str,
                         *, max_mb: float = 50.0, overwrite: bool = False, progress=None):
    """The share page (:mod:`lyra.render.share`) of the edited layer, every frame of a 4D one, as
    ``NAME.html`` under ``output_dir``; returns ``(path, SharePage)``."""
    from lyra.render.share import write_share_page

    with state.lock:
        scene = state.edited_scene(layer)
    target = named_path(output_dir, name, ".html", (".html", ".htm"))
    if target.exists() and not overwrite:
        raise SceneFileError(target, "a new path (tick overwrite to replace it)", "an existing file")
    page = write_share_page(scene, target, max_mb=max_mb, overwrite=overwrite, progress=progress)
    return target, page

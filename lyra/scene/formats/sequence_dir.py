"""4D scenes as a folder of numbered per-frame files (the de facto PLY-sequence exchange form).

Reading: the frames are the ``.ply`` / ``.splat`` / ``.spz`` / ``.glb`` files in the folder (each
detected by content, so compressed PLYs and Lyra tensor files work too),
ordered by the last number in their names (``frame_00000.ply``,
``time_00012.ply``; ties by name). An optional ``manifest.json``::

    {"format": "lyra-sequence", "version": 1, "fps": 24.0,
     "frames": ["frame_00000.ply", ...], "times": [0.0, 0.0417, ...]}

fixes the frame list, fps and per-frame times (seconds). A ``.zip`` of such a
folder (what the viewer accepts as an upload) reads the same way; it is
bounded (member count, total and per-member size) and members are extracted
under our own names, never their archive paths.

Reading is lazy: the sequence's length, times and per-frame counts come from
the manifest and the frames' headers; each frame's splats are read when first
indexed, into a byte-bounded cache (:class:`lyra.scene.lazy_frames.LazyFrames`).
A bad frame therefore raises SceneFileError when it is reached, not at open.

Writing: ``frame_00000.ply`` ... plus ``manifest.json``, into a temp folder
that replaces the target only when complete (:func:`lyra.fileio.atomic_directory`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from lyra.bounded_zip import BoundedZip
from lyra.errors import DecodeBudgetError, SceneFileError
from lyra.fileio import (
    atomic_directory,
    atomic_write,
    confined_reads,
    open_regular,
    real_folder,
    require_file_or_folder,
)
from lyra.progress import Progress, report
from lyra.scene.formats.checks import ZIP_MEMBER_ERRORS
from lyra.scene.formats.frame_info import frame_info
from lyra.scene.gaussians import Gaussians
from lyra.scene.lazy_frames import LazyFrames
from lyra.scene.sequence import DEFAULT_FPS, GaussianSequence

MANIFEST = "manifest.json"
FRAME_SUFFIXES = (".ply", ".splat", ".spz", ".glb")
FRAME_FORMATS = {"ply": ".ply", "ply-compressed": ".compressed.ply", "splat": ".splat", "gltf": ".glb"}  # written
STATIC_FORMATS = ("ply", "ply-compressed", "splat", "lyra-tensor", "spz", "gltf")
MAX_ZIP_MEMBERS = 100_000
MAX_ZIP_BYTES = 16 << 30  # uncompressed total; a 1M-splat SH-3 frame is 236 MiB
MAX_MANIFEST_BYTES = 16 << 20
# Splat frames are float data and deflate by 2-3x at most; a member claiming far
# more is a zip bomb. Small members are exempt (headers and padding compress well).
MAX_COMPRESSION_RATIO = 50
RATIO_CHECK_ABOVE_BYTES = 1 << 20
_FRAME_NAME = re.compile(r"[\w.-]{1,64}\.(ply|splat|spz|glb)", re.ASCII)
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_sort_key(name: str) -> tuple[float, str]:
    """Order frames by the last number in their file name, then by name."""
    match = _LAST_NUMBER.search(Path(name).stem)
    return (int(match.group(1)) if match else math.inf, name)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _parse_manifest(path: Path, text: bytes) -> dict:
    """The manifest's frames, times and fps, checked. Messages name what is wrong, never quote the file."""
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SceneFileError(path, "a JSON manifest", f"invalid JSON at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError:
        raise SceneFileError(path, "a UTF-8 JSON manifest", "bytes that are not UTF-8") from None
    except RecursionError:
        raise SceneFileError(path, "a JSON manifest of modest depth", "values nested too deeply") from None
    except (ValueError, OverflowError):  # e.g. integers over Python's 4300-digit conversion limit
        raise SceneFileError(path, "a JSON manifest with ordinary numbers", "a number too long to convert") from None
    if not isinstance(manifest, dict):
        raise SceneFileError(path, "a JSON object manifest", f"a JSON {type(manifest).__name__}")
    frames, times, fps = manifest.get("frames"), manifest.get("times"), manifest.get("fps", DEFAULT_FPS)
    if frames is not None and (not isinstance(frames, list) or not all(isinstance(f, str) for f in frames)):
        raise SceneFileError(path, "'frames': a list of file names", f"a JSON {type(frames).__name__} or non-string items")
    if frames is not None and len(set(frames)) != len(frames):
        # A frame listed N times would be loaded N times: a cheap file that costs N times the memory.
        raise SceneFileError(path, "'frames': each file listed once", f"{len(frames) - len(set(frames))} repeated entries")
    if times is not None and (not isinstance(times, list) or not all(_number(t) for t in times)):
        raise SceneFileError(path, "'times': a list of finite numbers", f"a JSON {type(times).__name__} or other items")
    if not _number(fps) or fps <= 0:
        raise SceneFileError(path, "'fps': a positive number", f"a JSON {type(fps).__name__} that is not")
    return {"frames": frames, "times": times, "fps": float(fps)}


def _assemble(where: Path, files: dict[str, Path], manifest: dict | None, drop_invalid: bool,
              keep_alive: object = None, root: Path | None = None) -> GaussianSequence:
    """A lazy sequence of ``files`` ({name: path}) in manifest or numeric order: headers read, frames not.

    ``root``: every frame read (now and later) must lie inside this real folder; a frame that is a
    symbolic link, or reached through one, is refused (:func:`lyra.fileio.confined_reads`).
    """
    from lyra.scene.formats import detect_format

    if manifest and manifest["frames"] is not None:
        missing = [f for f in manifest["frames"] if f not in files]
        if missing:
            # Only names that look like frame files are shown: a message must not quote arbitrary content.
            shown = [f for f in missing if _FRAME_NAME.fullmatch(f)][:5]
            raise SceneFileError(where, f"the frames listed in {MANIFEST}",
                                 f"{len(missing)} listed files missing{f' (e.g. {shown})' if shown else ''}")
        names = list(manifest["frames"])
    else:
        names = sorted(files, key=frame_sort_key)
    if not names:
        raise SceneFileError(where, f"frame files ({', '.join(FRAME_SUFFIXES)}) for a sequence", "no frames")

    loaders, counts, degrees, row_readers = [], [], [], []
    for name in names:
        fmt = detect_format(files[name])
        if fmt not in STATIC_FORMATS:
            raise SceneFileError(files[name], "a static scene file as a sequence frame", f"format {fmt!r}")
        with _confined(root):
            count, degree = frame_info(files[name], fmt)
        counts.append(count)
        degrees.append(degree)
        loaders.append(functools.partial(_load_frame, files[name], drop_invalid, root))
        # rows read one by one cannot drop invalid splats (that renumbers them): whole frames then
        row_readers.append(functools.partial(_open_rows, files[name], root) if fmt == "ply" and not drop_invalid
                           else _no_rows)
    times = manifest["times"] if manifest else None
    fps = manifest["fps"] if manifest else DEFAULT_FPS
    if times is not None and (len(times) != len(names) or any(b <= a for a, b in zip(times, times[1:], strict=False))):
        raise SceneFileError(where, f"{len(names)} strictly increasing times in {MANIFEST}",
                             f"{len(times)} times{'' if len(times) != len(names) else ', not increasing'}")
    return GaussianSequence(LazyFrames(loaders, counts, degrees, keep_alive=keep_alive, row_readers=row_readers), times, fps)


def _no_rows() -> None:
    return None


def _confined(root: Path | None):
    return confined_reads(root) if root is not None else contextlib.nullcontext()


def _open_rows(path: Path, root: Path | None):
    from lyra.scene.formats.ply import PlyRows

    with _confined(root):
        return PlyRows.open(path, confined_to=root)


def _load_frame(path: Path, drop_invalid: bool, root: Path | None = None) -> Gaussians:
    from lyra.scene.formats import load

    with _confined(root):  # on whichever thread reads it (lazy frames are read during playback)
        frame = load(path, drop_invalid=drop_invalid)
    assert isinstance(frame, Gaussians)
    return frame


def _read_folder(path: Path, drop_invalid: bool) -> GaussianSequence:
    root = real_folder(path)  # what the folder is now, from its descriptor; frames must stay inside it
    files = {p.name: p for p in path.iterdir()
             if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith(".")}
    manifest = None
    manifest_path = path / MANIFEST
    if os.path.lexists(manifest_path):
        with confined_reads(root), open_regular(manifest_path, "a regular manifest file") as handle:
            text = handle.read(MAX_MANIFEST_BYTES + 1)
        if len(text) > MAX_MANIFEST_BYTES:
            raise SceneFileError(manifest_path, f"a manifest under {MAX_MANIFEST_BYTES} bytes", "a larger file")
        manifest = _parse_manifest(manifest_path, text)
    return _assemble(path, files, manifest, drop_invalid, root=root)


def _safe_member(path: Path, info: zipfile.ZipInfo) -> bool:
    """True for a frame/manifest member; raises SceneFileError on hostile paths."""
    name = PurePosixPath(info.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or ":" in info.filename:
        raise SceneFileError(path, "archive members with relative paths inside the archive", "an absolute path or '..' in a member name")
    return not info.is_dir() and not name.name.startswith(".") and (name.suffix.lower() in FRAME_SUFFIXES or name.name == MANIFEST)


def _check_expansion(path: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse zip bombs: any large member, or the archive as a whole, expanding beyond MAX_COMPRESSION_RATIO."""
    for info in infos:
        if info.file_size > RATIO_CHECK_ABOVE_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise DecodeBudgetError(path, f"frames compressed at most {MAX_COMPRESSION_RATIO}:1",
                                 f"a member of {info.file_size} bytes from {info.compress_size} (a zip bomb?)")
    # Many small members each under the per-member floor add up: the total is what lands on disk.
    expanded = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    if expanded > RATIO_CHECK_ABOVE_BYTES and expanded > MAX_COMPRESSION_RATIO * max(compressed, 1):
        raise DecodeBudgetError(path, f"an archive expanding at most {MAX_COMPRESSION_RATIO}:1 in total",
                             f"{expanded} bytes from {compressed} compressed (a zip bomb?)")


def _read_zip(path: Path, drop_invalid: bool) -> GaussianSequence:
    bundle = BoundedZip(path, "a readable zip archive of frames")  # every member read bounded, any method
    holder = tempfile.TemporaryDirectory(prefix="lyra-zip-frames-")  # lives as long as the lazy frames
    tmp = holder.name
    with bundle:
        try:
            infos = bundle.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise SceneFileError(path, f"at most {MAX_ZIP_MEMBERS} archive members", f"{len(infos)}")
            members = [info for info in infos if _safe_member(path, info)]
            _check_expansion(path, members)
            total = sum(info.file_size for info in members)
            if total > MAX_ZIP_BYTES:
                raise SceneFileError(path, f"at most {MAX_ZIP_BYTES} uncompressed bytes of frames", f"{total} bytes declared")
            free = shutil.disk_usage(tmp).free
            if total > free:
                raise SceneFileError(path, f"frames that fit in the {free} free bytes of the temp folder", f"{total} bytes declared")
            files: dict[str, Path] = {}
            manifest = None
            for index, info in enumerate(members):
                base = PurePosixPath(info.filename.replace("\\", "/")).name
                if base in files or (base == MANIFEST and manifest is not None):
                    raise SceneFileError(path, "unique frame file names in the archive", f"member {index} repeats a name")
                try:
                    if base == MANIFEST:
                        manifest = _parse_manifest(path, bundle.read(info, MAX_MANIFEST_BYTES))
                        continue
                    target = Path(tmp) / f"member_{index:06d}{PurePosixPath(base).suffix.lower()}"
                    with open(target, "wb") as dst:
                        bundle.copy(info, dst)  # stops at the declared size, so ``total`` bounds the disk
                except ZIP_MEMBER_ERRORS as exc:
                    raise SceneFileError(path, "intact archive members", f"member {index}: {type(exc).__name__}") from None
                files[base] = target
            return _assemble(path, files, manifest, drop_invalid, keep_alive=holder)
        except BaseException:
            holder.cleanup()  # nothing will read the extracted frames
            raise


def read(path: str | Path, *, drop_invalid: bool = False) -> GaussianSequence:
    """Load a sequence folder or a ``.zip`` of frames. Raises SceneFileError (e.g. no frames)."""
    path = Path(path)
    if stat.S_ISDIR(require_file_or_folder(path).st_mode):
        return _read_folder(path, drop_invalid)
    if path.suffix.lower() == ".zip":
        return _read_zip(path, drop_invalid)
    raise SceneFileError(path, "a sequence folder or a .zip of frames", "a file of another kind")


def write(sequence: GaussianSequence | Gaussians, path: str | Path, *, overwrite: bool = True,
          sh_degree: int | None = None, frame_format: str = "ply", progress: Progress | None = None) -> None:
    """Write ``frame_00000.<ext>`` ... and ``manifest.json`` into ``path`` atomically.

    A single Gaussians is written as a one-frame sequence. ``frame_format`` is
    ``ply`` (default), ``ply-compressed``, ``splat`` or ``gltf`` (``.glb`` frames);
    ``progress`` hears of every frame written.
    """
    from lyra.scene.formats import _module

    path = Path(path)
    if isinstance(sequence, Gaussians):
        sequence = GaussianSequence([sequence])
    suffix = FRAME_FORMATS.get(frame_format)
    if suffix is None:
        raise SceneFileError(path, f"a frame format among {', '.join(FRAME_FORMATS)}", repr(frame_format))
    if path.exists() and overwrite and not (path / MANIFEST).is_file():
        # Overwriting replaces the whole folder: only ever do that to a sequence folder, never to
        # an arbitrary folder (or a file) that happens to have the target's name.
        raise SceneFileError(path, f"a new path or an existing sequence folder (with {MANIFEST}) to overwrite",
                             "an existing file or folder that is not a sequence")
    writer = _module(frame_format).write
    names = [f"frame_{i:05d}{suffix}" for i in range(len(sequence))]
    manifest = {"format": "lyra-sequence", "version": 1, "fps": sequence.fps, "frames": names, "times": list(sequence.times)}
    try:
        with atomic_directory(path, overwrite=overwrite) as tmp:
            for index, (name, frame) in enumerate(zip(names, sequence.frames, strict=True)):
                report(progress, index / len(names), f"frame {index + 1} of {len(names)}")
                writer(frame, tmp / name, sh_degree=sh_degree)
            with atomic_write(tmp / MANIFEST, "w") as handle:
                json.dump(manifest, handle, indent=1)
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing folder") from None

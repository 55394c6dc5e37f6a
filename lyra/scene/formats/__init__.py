"""File formats behind ``lyra.scene.load`` / ``lyra.scene.save``.

Format names (``FORMAT_TABLE``, the one table of formats; ``FORMATS`` maps them to
modules): ``ply`` (standard 3DGS PLY), ``ply-compressed`` (SuperSplat compressed
PLY), ``splat`` (antimatter15), ``lyra-tensor`` (the official torch-saved
``[1, N, 14]`` tensor, read only), ``sequence`` (a folder of numbered PLY frames
plus ``manifest.json``), ``spz`` (Niantic SPZ, v2-4 read, v4 written), ``sog``
(PlayCanvas SOG v2: a ``.sog`` zip bundle, or an unbundled ``meta.json`` with its
WebP images), ``gltf`` (``.glb`` with ``KHR_gaussian_splatting``), ``sequence-glb``
(a sequence folder of ``.glb`` frames), ``usd`` (OpenUSD
``ParticleField3DGaussianSplat`` in ``.usdz``/``.usd``/``.usda``/``.usdc``; a 4D
clip as time samples). A new format is one module plus one table row.

Each format lives in its own module exposing ``read(path, **opts)`` and
(except read-only ones) ``write(obj, path, **opts)``. Detection is by
content (:mod:`lyra.scene.formats.detect`). Problems that do not stop a load
(dropped invalid splats, values that look already activated) are issued as
:class:`SceneFileWarning`; ``lyra info`` lists them.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
from pathlib import Path

from lyra.errors import SceneFileError
from lyra.fileio import require_file_or_folder
from lyra.limits import out_of_memory_error
from lyra.progress import Progress, report
from lyra.scene.formats.checks import SceneFileWarning  # noqa: F401 - re-exported for callers
from lyra.scene.gaussians import Gaussians
from lyra.scene.sequence import GaussianSequence


@dataclasses.dataclass(frozen=True)
class FormatSpec:
    """One row of the format table: the module that reads/writes it, and what a save adds to a name."""

    module: str
    suffix: str | None  # ending a save adds to a name ("" = a folder); None = read only
    label: str  # a short description for menus and --help
    sequence: bool = False  # holds every frame of a 4D scene (other formats hold one set)
    also: tuple[str, ...] = ()  # other endings a name of this format may have (.usd, .usda, .usdc beside .usdz)
    write_options: tuple[tuple[str, object], ...] = ()  # options a save in this format passes its module

    def endings(self) -> tuple[str, ...]:
        """Every name ending of this format, the one a save adds first."""
        return ((self.suffix,) if self.suffix else ()) + self.also


# THE format table: the library, ``lyra convert`` and the viewer's Export panel all read it.
FORMAT_TABLE: dict[str, FormatSpec] = {
    "ply": FormatSpec("lyra.scene.formats.ply", ".ply", "3DGS PLY (keeps SH)"),
    "ply-compressed": FormatSpec("lyra.scene.formats.ply_compressed", ".compressed.ply", "SuperSplat compressed PLY"),
    "splat": FormatSpec("lyra.scene.formats.splat", ".splat", "antimatter15 .splat (no SH)"),
    "lyra-tensor": FormatSpec("lyra.scene.formats.lyra_tensor", None, "official Lyra [1, N, 14] tensor (read only)"),
    "sequence": FormatSpec("lyra.scene.formats.sequence_dir", "", "folder of PLY frames + manifest.json (4D)", True),
    "spz": FormatSpec("lyra.scene.formats.spz", ".spz", "Niantic SPZ (v4 written, v2-4 read)"),
    "sog": FormatSpec("lyra.scene.formats.sog", ".sog", "PlayCanvas SOG bundle (or a meta.json folder)"),
    "gltf": FormatSpec("lyra.scene.formats.gltf", ".glb", "glTF binary with KHR_gaussian_splatting (Y-up, keeps SH)"),
    "sequence-glb": FormatSpec("lyra.scene.formats.sequence_dir", "", "folder of GLB frames + manifest.json (4D)", True,
                               write_options=(("frame_format", "gltf"),)),
    "usd": FormatSpec("lyra.scene.formats.usd", ".usdz", "OpenUSD ParticleField3DGaussianSplat (Y-up; 4D as time samples)",
                      True, also=(".usd", ".usda", ".usdc")),
}
FORMATS: dict[str, str] = {name: spec.module for name, spec in FORMAT_TABLE.items()}


def writable_formats() -> list[str]:
    """Names of the formats :func:`save` can write, in table order."""
    return [name for name, spec in FORMAT_TABLE.items() if spec.suffix is not None]


def sequence_format_for(frame_format: str) -> str | None:
    """The sequence-folder format whose frames are ``frame_format`` files (``gltf`` -> ``sequence-glb``), if any."""
    return next((name for name, spec in FORMAT_TABLE.items()
                 if spec.sequence and dict(spec.write_options).get("frame_format") == frame_format), None)


def _module(fmt: str):
    if fmt not in FORMATS:
        raise SceneFileError(None, f"a format among {sorted(FORMATS)}", repr(fmt))
    return importlib.import_module(FORMATS[fmt])


def detect_format(path: str | os.PathLike) -> str:
    """Format name of an existing file or folder, from its content first, then its name."""
    from lyra.scene.formats.detect import detect_format as _detect

    return _detect(Path(path))


def load(path: str | os.PathLike, *, drop_invalid: bool = False) -> Gaussians | GaussianSequence:
    """Read a scene file or sequence folder.

    Every reader checks the decode budget (:mod:`lyra.limits`: splat count, decoded bytes,
    compression ratios) from the file's headers before allocating; a file over it raises
    :class:`lyra.errors.DecodeBudgetError`.

    ``drop_invalid``: drop splats with NaN/Inf values or zero quaternions
    (a warning with the count is issued) instead of raising SceneFileError.
    """
    path = Path(path)
    require_file_or_folder(path)  # FIFOs, devices and sockets are refused before anything opens them
    try:
        return _module(detect_format(path)).read(path, drop_invalid=drop_invalid)
    except MemoryError:
        # Every reader checks the decode budget (lyra.limits) from headers first; this is the last guard
        # for a process whose memory is smaller than the budget (an address-space limit, a loaded machine).
        raise out_of_memory_error(path, "a scene") from None


def save(
    obj: Gaussians | GaussianSequence,
    path: str | os.PathLike,
    format: str | None = None,
    progress: Progress | None = None,
    **options,
) -> Path:
    """Write ``obj`` atomically; ``format`` defaults from the name's ending in ``FORMAT_TABLE``
    (``.ply`` -> ply, ``.compressed.ply`` -> ply-compressed, ``.glb`` -> gltf, ``.usdz``/``.usd*`` -> usd, ...;
    no ending -> sequence). A 4D clip asked of a one-frame format goes to a sequence folder at ``path``
    whose frames are in that format where the folder can hold it (``.glb`` -> ``sequence-glb``).
    ``progress(fraction, text)`` is called as the writer goes where it reports (USD, sequences), else at the end.
    Returns the path written.
    """
    path = Path(path)
    if format is None:
        from lyra.scene.formats.detect import format_from_name

        format = format_from_name(path)
        if isinstance(obj, GaussianSequence) and not FORMAT_TABLE[format].sequence:
            format = sequence_format_for(format) or "sequence"
    module = _module(format)
    if not hasattr(module, "write"):
        raise SceneFileError(path, "a writable format", f"{format!r}, which is read-only")
    options = {**dict(FORMAT_TABLE[format].write_options), **options}
    if "progress" in inspect.signature(module.write).parameters:
        module.write(obj, path, progress=progress, **options)
    else:
        module.write(obj, path, **options)
        report(progress, 1.0, "written")
    return path

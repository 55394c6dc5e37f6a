"""OpenUSD (``.usdz`` / ``.usd`` / ``.usda`` / ``.usdc``) through ``usd-core`` (``pxr``): read and write.

The splats are one ``UsdVol.ParticleField3DGaussianSplat`` prim (OpenUSD 26.03+;
Isaac Sim 6 renders it) at ``/Scene/Splats`` under a default ``Xform`` prim ``/Scene``:

* ``positions`` (point3f[]), ``orientations`` (quatf[], unit), ``scales``
  (float3[], linear), ``opacities`` (float[] in 0..1);
* ``radiance:sphericalHarmonicsDegree`` (int) and
  ``radiance:sphericalHarmonicsCoefficients`` (float3[], a vertex primvar with
  element size K = (d+1)^2: K coefficients per splat, DC first, raw 3DGS values);
* ``projectionModeHint`` (``perspective`` by default, ``tangential`` on request),
  ``extent``, and ``primvars:displayColor`` (the base colour) for viewers without splats.

The stage is ``upAxis = Y`` with ``metersPerUnit`` = ``meters_per_unit``
(default 1.0: one scene unit is one metre; Lyra's scenes are metric only up to
the scale of their depth estimate, so pass the factor you know). Our RDF scenes
(-y up) are turned half a turn about z on the way out and back on the way in
(:mod:`lyra.scene.frames`), SH included; values are otherwise kept in the
file's units when reading (``metersPerUnit`` is not applied).

A 4D clip is one prim whose attributes have one time sample per frame (time
code = frame index; ``timeCodesPerSecond`` and ``framesPerSecond`` = the clip's
fps; every frame at the clip's highest SH degree; the exact frame times also go into the prim's ``customData`` as
``lyraTimes``). Frames may differ in splat count. Reading a prim with time
samples gives a :class:`GaussianSequence`, one without gives :class:`Gaussians`.

``collider=(vertices [V, 3], faces [F, 3])`` (RDF, e.g. from a surface mesh)
adds ``/Scene/Collider``: an invisible ``UsdGeom.Mesh`` with
``UsdPhysics.CollisionAPI`` and ``MeshCollisionAPI`` (approximation ``none``:
the triangles themselves), what Isaac Sim needs to collide with the scene.

``.usdz`` is packaged by ``UsdUtils.CreateNewUsdzPackage``; every file is made
in a temporary folder and moved into place atomically. ``pxr`` is imported
only when a USD file is written; reading runs usd-core in a child process
(:mod:`lyra.scene.formats.usd_stage_reader`) under an address-space limit and a
timeout, because a hostile crate file can make it allocate without bound or abort.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from lyra.errors import SceneFileError
from lyra.fileio import atomic_write, open_regular
from lyra.progress import Progress, report
from lyra.scene.formats.checks import reject_or_drop_invalid
from lyra.scene.frames import rdf_to_y_up, y_up_to_rdf
from lyra.scene.gaussians import Gaussians, normalize_quats
from lyra.scene.sequence import DEFAULT_FPS, GaussianSequence
from lyra.scene.sh import MAX_SH_DEGREE, num_sh_coeffs, rgb_to_sh_dc

ROOT_PATH, SPLATS_PATH, COLLIDER_PATH = "/Scene", "/Scene/Splats", "/Scene/Collider"
SPLAT_TYPE = "ParticleField3DGaussianSplat"
PROJECTION_MODES = ("perspective", "tangential")
MAX_SPLATS = 1 << 27
TIMES_KEY = "lyraTimes"
ORIGIN_KEY = "lyraOrigin"
SH_COEFFS = "radiance:sphericalHarmonicsCoefficients"
SH_DEGREE = "radiance:sphericalHarmonicsDegree"


def _pxr():
    try:
        from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdUtils, UsdVol, Vt
    except ImportError:
        raise SceneFileError(None, "usd-core installed (pip install usd-core) for USD files", "no pxr module") from None
    if not hasattr(UsdVol, SPLAT_TYPE):
        raise SceneFileError(None, f"usd-core with UsdVol.{SPLAT_TYPE} (OpenUSD 26.03 or later)", "an older usd-core")
    return Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdUtils, UsdVol, Vt


# ---------------------------------------------------------------------------------------------- write
def _author_frame(pxr, splats, g: Gaussians, time) -> None:
    """Set every splat attribute of ``splats`` to ``g`` (Y-up already) at ``time`` (Usd.TimeCode)."""
    Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdUtils, UsdVol, Vt = pxr
    means = g.means.numpy()
    splats.GetPositionsAttr().Set(Vt.Vec3fArray.FromNumpy(means), time)
    splats.GetOrientationsAttr().Set(Vt.QuatfArray.FromNumpy(normalize_quats(g.quats).numpy()[:, [1, 2, 3, 0]]), time)
    splats.GetScalesAttr().Set(Vt.Vec3fArray.FromNumpy(g.scales.numpy()), time)
    splats.GetOpacitiesAttr().Set(Vt.FloatArray.FromNumpy(g.opacities.numpy()), time)
    splats.GetRadianceSphericalHarmonicsCoefficientsAttr().Set(Vt.Vec3fArray.FromNumpy(g.sh.reshape(-1, 3).numpy()), time)
    extent = np.stack([means.min(0), means.max(0)]) if len(g) else np.zeros((2, 3), np.float32)
    splats.GetExtentAttr().Set(Vt.Vec3fArray.FromNumpy(extent), time)
    splats.GetDisplayColorAttr().Set(Vt.Vec3fArray.FromNumpy(g.rgb().clamp(0, 1).numpy()), time)


def _author_collider(pxr, stage, collider) -> None:
    Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdUtils, UsdVol, Vt = pxr
    vertices, faces = (np.asarray(a) for a in collider)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3 or not len(faces):
        raise SceneFileError(None, "a collider (vertices [V, 3], faces [F, 3])", f"shapes {vertices.shape}, {faces.shape}")
    if faces.min() < 0 or faces.max() >= len(vertices) or not np.isfinite(vertices).all():
        raise SceneFileError(None, "collider faces indexing its finite vertices", "indices out of range or NaN vertices")
    vertices = vertices.astype(np.float32) * np.array([-1.0, -1.0, 1.0], np.float32)  # RDF -> Y-up, as the splats
    mesh = UsdGeom.Mesh.Define(stage, COLLIDER_PATH)
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(vertices))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(faces), 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(faces.astype(np.int32).reshape(-1)))
    mesh.CreateExtentAttr(Vt.Vec3fArray.FromNumpy(np.stack([vertices.min(0), vertices.max(0)])))
    mesh.CreateVisibilityAttr(UsdGeom.Tokens.invisible)
    UsdPhysics.CollisionAPI.Apply(mesh.GetPrim())
    UsdPhysics.MeshCollisionAPI.Apply(mesh.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.none)


def build_stage(scene: Gaussians | GaussianSequence, *, sh_degree: int | None = None, meters_per_unit: float = 1.0,
                projection_mode: str = "perspective", collider=None, progress: Progress | None = None):
    """An in-memory ``Usd.Stage`` holding ``scene`` (see the module docstring for the layout)."""
    pxr = _pxr()
    Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdUtils, UsdVol, Vt = pxr
    if projection_mode not in PROJECTION_MODES:
        raise SceneFileError(None, f"a projection mode among {PROJECTION_MODES}", repr(projection_mode))
    if not (isinstance(meters_per_unit, (int, float)) and math.isfinite(meters_per_unit) and meters_per_unit > 0):
        raise SceneFileError(None, "a positive metersPerUnit", repr(meters_per_unit))
    clip = isinstance(scene, GaussianSequence)
    frames = scene.frames if clip else [scene]  # a lazy clip's frames are read one at a time below
    degree = sh_degree if sh_degree is not None else (scene.sh_degree if not clip or len(scene) else 0)
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, float(meters_per_unit))
    root = UsdGeom.Xform.Define(stage, ROOT_PATH)
    stage.SetDefaultPrim(root.GetPrim())
    splats = UsdVol.ParticleField3DGaussianSplat.Define(stage, SPLATS_PATH)
    splats.CreateProjectionModeHintAttr(projection_mode)
    splats.CreateRadianceSphericalHarmonicsDegreeAttr(degree)
    for name in ("positions", "orientations", "scales", "opacities"):
        getattr(splats, f"Create{name.capitalize()}Attr")()
    splats.CreateRadianceSphericalHarmonicsCoefficientsAttr()
    splats.CreateExtentAttr()
    splats.CreateDisplayColorAttr()
    primvar = UsdGeom.Primvar(splats.GetRadianceSphericalHarmonicsCoefficientsAttr())
    primvar.SetInterpolation(UsdGeom.Tokens.vertex)
    primvar.SetElementSize(num_sh_coeffs(degree))
    UsdGeom.Primvar(splats.GetDisplayColorAttr()).SetInterpolation(UsdGeom.Tokens.vertex)
    origin = scene.origin if len(frames) else None
    if origin and origin.isidentifier():
        splats.GetPrim().SetCustomDataByKey(ORIGIN_KEY, origin)
    if clip:
        stage.SetTimeCodesPerSecond(scene.fps)
        stage.SetFramesPerSecond(scene.fps)
        stage.SetStartTimeCode(0)
        stage.SetEndTimeCode(max(len(frames) - 1, 0))
        splats.GetPrim().SetCustomDataByKey(TIMES_KEY, Vt.DoubleArray([float(t) for t in scene.times]))
    for index in range(len(frames)):
        report(progress, 0.8 * index / max(len(frames), 1), f"frame {index + 1} of {len(frames)}")
        y_up = rdf_to_y_up(frames[index].with_sh_degree(degree).to(dtype=torch.float32))
        time = Usd.TimeCode(index) if clip else Usd.TimeCode.Default()
        _author_frame(pxr, splats, y_up, time)
    if collider is not None:
        _author_collider(pxr, stage, collider)
    return stage


def write(scene: Gaussians | GaussianSequence, path: str | Path, *, overwrite: bool = True, sh_degree: int | None = None,
          meters_per_unit: float = 1.0, projection_mode: str = "perspective", collider=None,
          progress: Progress | None = None) -> None:
    """Write ``scene`` as ``.usdz`` (packaged), ``.usdc``/``.usd`` (binary crate) or ``.usda`` (text), atomically.

    ``collider``: optional ``(vertices [V, 3], faces [F, 3])`` arrays in the scene's frame.
    Raises SceneFileError (bad options, an existing path without ``overwrite``, usd-core missing).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".usdz", ".usd", ".usda", ".usdc"):
        raise SceneFileError(path, "a name ending in .usdz, .usd, .usda or .usdc", f"suffix {path.suffix!r}")
    if not overwrite and path.exists():
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file")
    stage = build_stage(scene, sh_degree=sh_degree, meters_per_unit=meters_per_unit, projection_mode=projection_mode,
                        collider=collider, progress=progress)
    _, _, _, _, _, UsdUtils, _, _ = _pxr()
    with tempfile.TemporaryDirectory(prefix="lyra-usd-") as tmp:
        layer_path = Path(tmp) / ("scene.usdc" if suffix == ".usdz" else "scene" + suffix)
        report(progress, 0.85, "saving the layer")
        if not stage.GetRootLayer().Export(str(layer_path)):
            raise SceneFileError(path, "a USD layer written", "usd-core refused to export it")
        made = layer_path
        if suffix == ".usdz":
            report(progress, 0.92, "packaging USDZ")
            made = Path(tmp) / "scene.usdz"
            if not UsdUtils.CreateNewUsdzPackage(str(layer_path), str(made)):
                raise SceneFileError(path, "a USDZ package", "UsdUtils refused to package the layer")
        try:
            with atomic_write(path, "wb", overwrite=overwrite) as handle, open(made, "rb") as source:
                shutil.copyfileobj(source, handle, 1 << 20)
        except FileExistsError:
            raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None
    report(progress, 1.0, "written")


# ---------------------------------------------------------------------------------------------- read
CHILD = Path(__file__).with_name("usd_stage_reader.py")
CHILD_BASE_BYTES = 3 << 30  # address space of python + numpy + usd-core, with room for a normal file
CHILD_BYTES_PER_FILE_BYTE = 16  # text layers expand in memory; crate arrays are read whole
CHILD_BASE_SECONDS = 120.0
MAX_META_BYTES = 16 << 20


def _dump_stage(path: Path, out: Path) -> dict:
    """Run :mod:`usd_stage_reader` on ``path`` in a child process; its meta.json, checked for shape."""
    size = open_regular_size(path)
    limit = CHILD_BASE_BYTES + CHILD_BYTES_PER_FILE_BYTE * size
    try:
        result = subprocess.run([sys.executable, "-I", str(CHILD), str(path), str(out), str(limit)], capture_output=True,
                                encoding="utf-8", errors="replace", timeout=CHILD_BASE_SECONDS + size / (1 << 20), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SceneFileError(path, "a USD file usd-core reads in reasonable time", "a file it was still reading") from None
    if result.returncode == 3:
        try:
            message = str(json.loads(result.stdout.strip().splitlines()[-1])["error"])
        except (ValueError, KeyError, IndexError, TypeError):
            message = "an error"
        raise SceneFileError(path, "a USD file usd-core can read", message)
    if result.returncode != 0:
        if "ModuleNotFoundError" in result.stderr and "pxr" in result.stderr:
            _pxr()  # raises the install hint
        how = f"signal {-result.returncode}" if result.returncode < 0 else f"exit code {result.returncode}"
        raise SceneFileError(path, "a USD file usd-core can read", f"a file it failed on ({how}: out of memory or corrupt)")
    meta_path = out / "meta.json"
    if not meta_path.is_file() or meta_path.stat().st_size > MAX_META_BYTES:
        raise SceneFileError(path, "a USD file usd-core can read", "no result from the reader")
    meta = json.loads(meta_path.read_text())
    if not meta["found"]:
        raise SceneFileError(path, f"a {SPLAT_TYPE} prim", "none on the stage")
    if meta["up_axis"] != "Y":
        raise SceneFileError(path, "a Y-up USD stage (upAxis = Y)", f"upAxis {meta['up_axis']}")
    return meta


def open_regular_size(path: Path) -> int:
    """Size of the regular file ``path`` (FIFOs and devices refused before anything opens them)."""
    with open_regular(path, "a USD file") as handle:
        return os.fstat(handle.fileno()).st_size


def _array(path: Path, out: Path, frame: int, present: list[str], name: str, width: int, count: int | None) -> np.ndarray | None:
    """Frame ``frame``'s float32 ``[n, width]`` values of ``name``; None when the file does not author it."""
    if name not in present:
        return None
    array = np.load(out / f"{frame}_{name.replace(':', '.')}.npy", allow_pickle=False)
    if array.ndim == 1 and width == 1:
        array = array[:, None]
    if array.dtype != np.float32 or array.ndim != 2 or array.shape[1] != width:
        raise SceneFileError(path, f"'{name}' with {width} values per element", f"shape {array.shape}")
    if count is not None and len(array) != count:
        raise SceneFileError(path, f"{count} elements of '{name}' (one per position)", f"{len(array)}")
    return array


def _frame(path: Path, out: Path, frame: int, present: list[str], degree, origin) -> Gaussians:
    means = _array(path, out, frame, present, "positions", 3, None)
    if means is None:
        raise SceneFileError(path, f"'positions' on the {SPLAT_TYPE} prim", "none authored")
    n = len(means)
    if n > MAX_SPLATS:
        raise SceneFileError(path, f"at most {MAX_SPLATS} splats", f"{n}")
    quats_xyzw = _array(path, out, frame, present, "orientations", 4, n)
    scales = _array(path, out, frame, present, "scales", 3, n)
    if scales is None:
        raise SceneFileError(path, f"'scales' on the {SPLAT_TYPE} prim", "none authored")
    opacities = _array(path, out, frame, present, "opacities", 1, n)
    degree = 0 if degree is None else degree
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise SceneFileError(path, f"{SH_DEGREE} in 0..{MAX_SH_DEGREE}", repr(degree))
    k = num_sh_coeffs(degree)
    sh = _array(path, out, frame, present, SH_COEFFS, 3, None)
    if sh is not None:
        if len(sh) != n * k:
            raise SceneFileError(path, f"{n} x {k} SH coefficients (degree {degree})", f"{len(sh)}")
        sh = sh.reshape(n, k, 3)
    else:
        colors = _array(path, out, frame, present, "primvars:displayColor", 3, n)
        dc = rgb_to_sh_dc(torch.from_numpy(colors)).numpy() if colors is not None else np.zeros((n, 3), np.float32)
        sh = dc[:, None, :]
    wxyz = (np.ascontiguousarray(quats_xyzw[:, [3, 0, 1, 2]]) if quats_xyzw is not None
            else np.tile(np.array([1, 0, 0, 0], np.float32), (n, 1)))
    opacities = np.ascontiguousarray(opacities[:, 0]) if opacities is not None else np.ones(n, np.float32)
    with np.errstate(invalid="ignore"):
        if (opacities < 0).any() or (opacities > 1).any():
            raise SceneFileError(path, "opacities in [0, 1]", f"values from {np.nanmin(opacities):.3g} to {np.nanmax(opacities):.3g}")
        if (scales < 0).any():
            raise SceneFileError(path, "non-negative linear scales", f"a smallest scale of {np.nanmin(scales):.3g}")
    g = Gaussians(torch.from_numpy(means), torch.from_numpy(wxyz), torch.from_numpy(scales), torch.from_numpy(opacities),
                  torch.from_numpy(np.ascontiguousarray(sh)),
                  origin=origin if isinstance(origin, str) and origin.isidentifier() else None)
    return g


def _finish(path: Path, g: Gaussians, drop_invalid: bool) -> Gaussians:
    g = reject_or_drop_invalid(g, path, drop_invalid)
    return y_up_to_rdf(g.replace(quats=normalize_quats(g.quats)))


def _times(meta: dict, fps: float) -> list[float]:
    """The exact frame times our writer keeps in customData when present and sane, else time codes / fps."""
    samples, stored = meta["samples"], meta["times"]
    if (isinstance(stored, list) and len(stored) == len(samples) and all(isinstance(t, float) and math.isfinite(t) for t in stored)
            and all(b > a for a, b in zip(stored, stored[1:], strict=False))):
        return stored
    return [t / fps for t in samples]


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians | GaussianSequence:
    """Load the first ``ParticleField3DGaussianSplat`` prim of a USD file (RDF, activated).

    Time-sampled positions give a GaussianSequence (one frame per time sample of
    ``positions``). usd-core parses the file in a child process under a memory
    limit and a timeout (:mod:`lyra.scene.formats.usd_stage_reader`), so a hostile
    file costs at most that. Raises SceneFileError for files usd-core cannot
    read, stages that are not Y-up, no splat prim, or inconsistent attributes.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="lyra-usd-read-") as tmp:
        out = Path(tmp)
        meta = _dump_stage(path, out)
        frames = []
        for index, (present, degree) in enumerate(zip(meta["arrays"], meta["degrees"], strict=True)):
            frames.append(_finish(path, _frame(path, out, index, present, degree, meta["origin"]), drop_invalid))
    if not meta["samples"]:
        return frames[0]
    fps = meta["fps"] or DEFAULT_FPS
    return GaussianSequence(frames, _times(meta, fps), fps)

"""Child-process half of the USD reader: open a stage with usd-core, dump the splat prim's arrays as .npy files.

Run as a script (``python -I usd_stage_reader.py FILE OUT_DIR MAX_BYTES``) by
:mod:`lyra.scene.formats.usd`, never imported by the library: a hostile crate
file can make usd-core allocate without bound or abort the process
(``std::bad_alloc``), so it runs here under an address-space limit and a
timeout, and the parent only ever sees plain arrays, which it checks.
Imports numpy and pxr only (no torch, no lyra), so it starts fast and small.

Output: ``OUT_DIR/meta.json`` (``{"up_axis", "found", "fps", "samples", "times",
"origin", "degrees", "arrays"}``), and ``OUT_DIR/F_NAME.npy`` for frame ``F``
and each authored attribute. A problem with the file is printed as one JSON
line ``{"error": "..."}`` with exit code 3 (never quoting the file: messages reach clients).
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

SPLAT_TYPE = "ParticleField3DGaussianSplat"
TIMES_KEY, ORIGIN_KEY = "lyraTimes", "lyraOrigin"
SH_DEGREE = "radiance:sphericalHarmonicsDegree"
# attribute -> its half-precision twin (the schema allows either)
ARRAYS = {"positions": "positionsh", "orientations": "orientationsh", "scales": "scalesh", "opacities": "opacitiesh",
          "radiance:sphericalHarmonicsCoefficients": "radiance:sphericalHarmonicsCoefficientsh",
          "primvars:displayColor": None}


class FileProblem(Exception):
    pass


def _value(prim, name, time):
    for attr_name in (name, ARRAYS.get(name)):
        attr = prim.GetAttribute(attr_name) if attr_name else None
        if attr is None or not attr.IsValid() or not attr.HasAuthoredValue():
            continue
        value = attr.Get(time)
        if value is not None:
            return attr, value
    return None, None


def _dump(path: Path, out: Path) -> None:
    from pxr import Tf, Usd, UsdGeom

    try:
        stage = Usd.Stage.Open(str(path), Usd.Stage.LoadAll)
    except Tf.ErrorException as exc:
        raise FileProblem(f"a file usd-core refused to open ({type(exc).__name__})") from None
    if stage is None:
        raise FileProblem("a file usd-core refused to open")
    prim = next((p for p in stage.Traverse() if p.GetTypeName() == SPLAT_TYPE), None)
    meta = {"up_axis": str(UsdGeom.GetStageUpAxis(stage)), "found": prim is not None, "fps": None, "samples": [],
            "times": None, "origin": None, "degrees": [], "arrays": []}
    if prim is None:
        (out / "meta.json").write_text(json.dumps(meta))
        return
    fps = stage.GetTimeCodesPerSecond()
    meta["fps"] = float(fps) if isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0 else None
    attr = prim.GetAttribute("positions")
    if not attr.IsValid() or not attr.HasAuthoredValue():
        attr = prim.GetAttribute("positionsh")
    samples = [float(t) for t in attr.GetTimeSamples()] if attr.IsValid() else []
    meta["samples"] = samples
    times = prim.GetCustomDataByKey(TIMES_KEY)
    try:
        meta["times"] = [float(t) for t in times] if times is not None else None
    except (TypeError, ValueError):
        meta["times"] = None
    origin = prim.GetCustomDataByKey(ORIGIN_KEY)
    meta["origin"] = origin if isinstance(origin, str) else None
    codes = [Usd.TimeCode(t) for t in samples] or [Usd.TimeCode.Default()]
    for index, time in enumerate(codes):
        degree_attr = prim.GetAttribute(SH_DEGREE)
        degree = degree_attr.Get(time) if degree_attr.IsValid() else None
        meta["degrees"].append(degree if isinstance(degree, int) and not isinstance(degree, bool) else None)
        present = []
        for name in ARRAYS:
            found, value = _value(prim, name, time)
            if found is None:
                continue
            try:
                array = np.array(value, dtype=np.float32)
            except (TypeError, ValueError):
                raise FileProblem(f"a {found.GetTypeName()} attribute where numbers belong") from None
            np.save(out / f"{index}_{name.replace(':', '.')}.npy", array, allow_pickle=False)
            present.append(name)
        meta["arrays"].append(present)
    (out / "meta.json").write_text(json.dumps(meta))


def main() -> int:
    path, out, max_bytes = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))  # before pxr allocates anything
    except (ImportError, ValueError, OSError):
        pass  # no such limit on this OS: the parent's timeout still bounds the run
    try:
        _dump(path, out)
    except FileProblem as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    except Exception as exc:  # pxr raises Tf.ErrorException (and others) from lazily read, corrupt values
        # The type only: pxr's messages quote the file, and ours reach clients.
        print(json.dumps({"error": f"values usd-core could not read ({type(exc).__name__})"}))
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

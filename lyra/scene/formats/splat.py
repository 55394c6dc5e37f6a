"""antimatter15 ``.splat``: no header, 32 bytes per splat, no SH.

Row layout (little-endian): position 3 x float32, scale 3 x float32 (linear),
colour r, g, b, a as uint8 (``rgb = (0.5 + SH_C0 * f_dc) * 255``,
``a = opacity * 255``), quaternion w, x, y, z as uint8 (``q / |q| * 128 + 128``).
Writers sort by ``scale_x * scale_y * scale_z * opacity``, largest first, so
viewers can stream the most visible splats first; a round trip therefore
reorders splats and keeps colour to 8 bits, rotations to ~1/128.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from lyra import limits
from lyra.errors import SceneFileError
from lyra.fileio import atomic_write, open_regular
from lyra.scene.formats.checks import reject_or_drop_invalid
from lyra.scene.gaussians import Gaussians, normalize_quats
from lyra.scene.sh import rgb_to_sh_dc, sh_dc_to_rgb

ROW = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("quat", "u1", 4)])
assert ROW.itemsize == 32


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load a ``.splat`` file as activated SH-degree-0 Gaussians. Raises SceneFileError."""
    path = Path(path)
    with open_regular(path, "a .splat file") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0 or size % ROW.itemsize:
            raise SceneFileError(path, f"a non-empty .splat file whose size is a multiple of {ROW.itemsize} bytes",
                                 f"{size} bytes")
        limits.check_splats(path, size // ROW.itemsize)
        rows = np.fromfile(handle, dtype=ROW, count=size // ROW.itemsize)
    rgba = rows["rgba"].astype(np.float32) / 255.0
    quats = (rows["quat"].astype(np.float32) - 128.0) / 128.0
    gaussians = Gaussians(
        means=torch.from_numpy(rows["position"].copy()),
        quats=normalize_quats(torch.from_numpy(quats)),
        scales=torch.from_numpy(rows["scale"].copy()),
        opacities=torch.from_numpy(np.ascontiguousarray(rgba[:, 3])),
        sh=rgb_to_sh_dc(torch.from_numpy(np.ascontiguousarray(rgba[:, :3]))).unsqueeze(1),
    )
    return reject_or_drop_invalid(gaussians, path, drop_invalid)


def write(gaussians: Gaussians, path: str | Path, *, overwrite: bool = True, sh_degree: int | None = None) -> None:
    """Write ``.splat`` atomically, largest-and-most-opaque splats first.

    The format stores base colour only: SH bands beyond DC are dropped whatever
    ``sh_degree`` says (it is accepted so every writer takes the same options).
    """
    path = Path(path)
    if not isinstance(gaussians, Gaussians):
        raise SceneFileError(path, "a static Gaussians scene for a .splat file", f"a {type(gaussians).__name__}")
    if len(gaussians) == 0:
        # The format has no header: a zero-byte file could not be told from a truncated one and never reads back.
        raise SceneFileError(path, "a scene with at least one splat (a .splat file has no header to hold zero)",
                             "an empty scene; export it as .ply or .compressed.ply instead")
    g = gaussians.to("cpu", torch.float32)
    importance = g.scales.prod(dim=1) * g.opacities
    order = torch.argsort(importance, descending=True, stable=True)
    g = g[order]
    rows = np.empty(len(g), ROW)
    rows["position"] = g.means.numpy()
    rows["scale"] = g.scales.numpy()
    rgba = torch.cat([sh_dc_to_rgb(g.sh[:, 0]), g.opacities[:, None]], dim=1)
    rows["rgba"] = (rgba * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    rows["quat"] = (normalize_quats(g.quats) * 128 + 128).round().clamp(0, 255).to(torch.uint8).numpy()
    try:
        with atomic_write(path, "wb", overwrite=overwrite) as handle:
            handle.write(rows.tobytes())
    except FileExistsError:
        raise SceneFileError(path, "a path that does not exist yet (or overwrite)", "an existing file") from None

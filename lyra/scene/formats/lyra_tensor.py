"""Official Lyra ``save_gaussians`` output (read only).

Lyra saves its decoder output with ``torch.save`` of one activated tensor
``[1, N, 14]`` (or ``[N, 14]``) under a name ending in ``.ply``; it is not a
PLY. Columns: xyz (3), opacity (1, in 0..1), scale (3, linear), quaternion
(4, w x y z), rgb (3, in 0..1). Detected by content (zip/pickle magic).
Loaded with ``weights_only=True`` so a hostile file cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lyra.bounded_zip import check_zip_members
from lyra.errors import SceneFileError
from lyra.fileio import open_regular
from lyra.scene.formats.checks import reject_or_drop_invalid
from lyra.scene.gaussians import LYRA_ORIGIN, Gaussians, normalize_quats
from lyra.scene.sh import rgb_to_sh_dc

COLUMNS = 14


def read(path: str | Path, *, drop_invalid: bool = False) -> Gaussians:
    """Load a Lyra ``[1, N, 14]`` tensor file as SH-degree-0 Gaussians. Raises SceneFileError."""
    path = Path(path)
    check_zip_members(path, "a torch.save file")  # torch's reader would inflate a bomb member whole
    with open_regular(path, "a torch.save file") as handle:
        try:
            data = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch.load's many failure types become one clear error
            # Only the exception type: torch's messages quote the file's content (pickle globals, strings).
            raise SceneFileError(path, "a torch.save file holding a Lyra [1, N, 14] tensor",
                                 f"a file torch.load refused ({type(exc).__name__})") from None
    if not isinstance(data, torch.Tensor):
        raise SceneFileError(path, "a Lyra [1, N, 14] tensor", f"a saved {type(data).__name__}")
    tensor = data[0] if data.ndim == 3 and data.shape[0] == 1 else data
    if tensor.ndim != 2 or tensor.shape[1] != COLUMNS or not tensor.is_floating_point():
        raise SceneFileError(path, f"a floating-point tensor of shape [1, N, {COLUMNS}] or [N, {COLUMNS}]",
                             f"a {data.dtype} tensor of shape {list(data.shape)}")
    tensor = tensor.to(torch.float32)
    means, opacities, scales, quats, rgb = tensor.split([3, 1, 3, 4, 3], dim=1)
    gaussians = Gaussians(
        means=means.contiguous(),
        quats=normalize_quats(quats),
        scales=scales.contiguous(),
        opacities=opacities[:, 0].contiguous(),
        sh=rgb_to_sh_dc(rgb).unsqueeze(1),
        origin=LYRA_ORIGIN,  # renders in Lyra's look by default (lyra.render.looks)
    )
    return reject_or_drop_invalid(gaussians, path, drop_invalid)

"""The one change of frame at file boundaries: our right-down-front (RDF) world <-> a Y-up world.

Scenes in memory follow OpenCV/COLMAP (x right, y down, z forward: -y is up).
Formats that fix an up axis (glTF: right-handed, +Y up; USD with ``upAxis = Y``;
SPZ: right-up-back) hold the same scene turned half a turn about x:
``(x, y, z) -> (x, -y, -z)``. That is a proper rotation ``F = diag(1, -1, -1)``
and its own inverse, so:

* centres: ``F p``;
* orientations: ``R' = F R``, i.e. the quaternion product ``r * q`` with
  ``r = (0, 1, 0, 0)`` (what NVIDIA's usd-convert-gsplat does for
  ``rotation_degrees=(180, 0, 0)``); the way back multiplies by ``r^-1``;
* SH: every real-SH basis function is even or odd in (y, z) together, so the
  rotated coefficients are the old ones times +-1 (:data:`HALF_TURN_X_SH_SIGNS`).
  This sign flip is exact for this rotation (``lyra.edit.sh_rotation.rotate_sh``
  with ``F`` gives the same numbers; a test checks it).
"""

from __future__ import annotations

import torch

from lyra.scene.gaussians import Gaussians

# Sign of each SH rest coefficient (bands 1-3, standard real-SH order) under (x, y, z) -> (x, -y, -z).
HALF_TURN_X_SH_SIGNS = (-1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0)
_POINT_SIGNS = (1.0, -1.0, -1.0)


def _turn(gaussians: Gaussians, back: bool) -> Gaussians:
    g = gaussians
    means = g.means * g.means.new_tensor(_POINT_SIGNS)
    w, x, y, z = g.quats.unbind(-1)
    # r * q = (-x, w, -z, y); r^-1 * q = (x, -w, z, -y)
    quats = torch.stack([x, -w, z, -y] if back else [-x, w, -z, y], dim=-1)
    signs = g.sh.new_tensor((1.0,) + HALF_TURN_X_SH_SIGNS)[: g.sh.shape[1]]
    return g.replace(means=means, quats=quats, sh=g.sh * signs[:, None])


def rdf_to_y_up(gaussians: Gaussians) -> Gaussians:
    """Our RDF scene as seen in a right-handed Y-up frame (half a turn about x)."""
    return _turn(gaussians, back=False)


def y_up_to_rdf(gaussians: Gaussians) -> Gaussians:
    """Inverse of :func:`rdf_to_y_up`: quaternions come back exactly, not negated."""
    return _turn(gaussians, back=True)

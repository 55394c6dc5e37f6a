"""The one change of frame at file boundaries: our right-down-front (RDF) world <-> a Y-up world.

Scenes in memory follow OpenCV/COLMAP (x right, y down, z forward: -y is up).
glTF (right-handed, +Y up, -X right) and USD (``upAxis = Y``) hold the same
scene turned half a turn about z: ``(x, y, z) -> (-x, -y, z)``, as
splat-transform's GLB writer and PlayCanvas/SuperSplat do for PLY scenes, so a
GLB from either tool loads the same way. That turn ``F = diag(-1, -1, 1)`` is
a proper rotation and its own inverse, so:

* centres: ``F p``;
* orientations: ``R' = F R``, i.e. the quaternion product ``r * q`` with
  ``r = (0, 0, 0, 1)`` (what NVIDIA's usd-convert-gsplat does for
  ``rotation_degrees=(0, 0, 180)``); the way back multiplies by ``r^-1``;
* SH: every real-SH basis function of order ``m`` is multiplied by ``(-1)^m``
  under this turn, so the rotated coefficients are the old ones times +-1
  (:data:`HALF_TURN_Z_SH_SIGNS`), exactly (``lyra.edit.sh_rotation.rotate_sh``
  with ``F`` gives the same numbers; a test checks it).

SPZ stores right-up-back instead, half a turn about x (:data:`HALF_TURN_X_SH_SIGNS`).
"""

from __future__ import annotations

import torch

from lyra.scene.gaussians import Gaussians

# Sign of each SH rest coefficient (bands 1-3, standard real-SH order) under (x, y, z) -> (x, -y, -z).
HALF_TURN_X_SH_SIGNS = (-1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0)
# ... and under (x, y, z) -> (-x, -y, z): (-1)^m for order m.
HALF_TURN_Z_SH_SIGNS = (-1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0)
_POINT_SIGNS = (-1.0, -1.0, 1.0)


def _turn(gaussians: Gaussians, back: bool) -> Gaussians:
    g = gaussians
    means = g.means * g.means.new_tensor(_POINT_SIGNS)
    w, x, y, z = g.quats.unbind(-1)
    # r * q = (-z, -y, x, w); r^-1 * q = (z, y, -x, -w)
    quats = torch.stack([z, y, -x, -w] if back else [-z, -y, x, w], dim=-1)
    signs = g.sh.new_tensor((1.0,) + HALF_TURN_Z_SH_SIGNS)[: g.sh.shape[1]]
    return g.replace(means=means, quats=quats, sh=g.sh * signs[:, None])


def rdf_to_y_up(gaussians: Gaussians) -> Gaussians:
    """Our RDF scene as seen in the right-handed Y-up frame of glTF and USD (half a turn about z)."""
    return _turn(gaussians, back=False)


def y_up_to_rdf(gaussians: Gaussians) -> Gaussians:
    """Inverse of :func:`rdf_to_y_up`: quaternions come back exactly, not negated."""
    return _turn(gaussians, back=True)

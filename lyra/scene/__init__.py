"""Scene model (static Gaussians and 4D sequences) and file formats.

``load(path)`` and ``save(obj, path, format=None)`` are the one entry point
for every supported file format; see :mod:`lyra.scene.formats`.
"""

from lyra.scene.formats import FORMATS, load, save
from lyra.scene.gaussians import LYRA_ORIGIN, Gaussians, normalize_quats, quats_to_rotmats, rotmats_to_quats
from lyra.scene.sequence import GaussianSequence

__all__ = [
    "LYRA_ORIGIN",
    "Gaussians",
    "GaussianSequence",
    "load",
    "save",
    "FORMATS",
    "normalize_quats",
    "quats_to_rotmats",
    "rotmats_to_quats",
]

"""Wiring of the generation stack: the front door, the teaching engine, conditioning, SDG folders, decoding, depth.

* :mod:`lyra.pipeline.request` - :class:`GenerateRequest` and :func:`run`: the one front door of generation
  (``lyra generate``, the Generate panel, make-data and Python build a request);
* :mod:`lyra.pipeline.teach` - teacher x units -> SDG folders: atomic, resumable, round-robin over ranks;
* :mod:`lyra.pipeline.generate` - the lyra backend's stages (input, trajectories, decode);

* :mod:`lyra.pipeline.conditioning` - decoder inputs from in-memory latents and
  :class:`lyra.render.Camera` batches (denormalised latents, rays, Plucker and
  time embeddings through the tokenizer); no ``inference_mode``, a trainer reuses it.
* :mod:`lyra.pipeline.sdg` - the official per-trajectory folder layout
  (``rgb/ latent/ pose/ intrinsics/ depth/``), read and write.
* :mod:`lyra.pipeline.decode` - :func:`decode_latents` (in memory) and
  :func:`decode_scene` (an SDG folder) -> Gaussians.
* :mod:`lyra.pipeline.depth` - monocular depth (Depth Pro, Depth Anything V2 metric) or a depth file.
* :mod:`lyra.pipeline.lift` - :func:`lift_image`: image + depth -> pixel-aligned Gaussians (the fast preview).
"""

from lyra.pipeline.decode import decode_latents, decode_scene
from lyra.pipeline.lift import lift_image
from lyra.pipeline.sdg import Trajectory, read_scene, read_trajectory, write_trajectory

__all__ = [
    "Trajectory",
    "decode_latents",
    "decode_scene",
    "lift_image",
    "read_scene",
    "read_trajectory",
    "write_trajectory",
]

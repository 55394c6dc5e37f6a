"""Splat editing: selections (boolean masks), edit operations and floater removal.

Pure functions on :class:`lyra.scene.Gaussians` and tensors; nothing here
mutates its inputs or knows about the viewer. See :mod:`lyra.edit.select`,
:mod:`lyra.edit.ops` and :mod:`lyra.edit.floaters`.
"""

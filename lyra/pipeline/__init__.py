"""Wiring between the networks and the user: depth, the fast lift, generation."""

from lyra.pipeline.lift import lift_image

__all__ = ["lift_image"]

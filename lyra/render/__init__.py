"""Cameras, trajectories and renderers."""

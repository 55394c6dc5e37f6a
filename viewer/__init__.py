"""Lyra Studio's viser viewer: scene state, buffer packing, panels. Entry point: ``launch.py``."""

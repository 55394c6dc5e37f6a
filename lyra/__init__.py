"""Lyra Studio: look at, fix and ship generated 3D and 4D Gaussian scenes."""

from lyra.errors import LyraError

__version__ = "0.1.0"
__all__ = ["LyraError", "__version__"]

"""Project error types.

Every error the library raises on purpose derives from :class:`LyraError`, so a
caller (the CLI, the viewer) can catch one type and show its message.
"""

from __future__ import annotations

import os


class LyraError(Exception):
    """Base class of every error the ``lyra`` package raises on purpose."""


class SceneFileError(LyraError):
    """A scene file or folder could not be read or written.

    The message names the file, what was expected and what was found.
    """

    def __init__(self, path: str | os.PathLike | None, expected: str, found: str):
        self.path = None if path is None else os.fspath(path)
        self.expected = expected
        self.found = found
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}expected {expected}, found {found}")


class InvalidGaussiansError(LyraError, ValueError):
    """In-memory Gaussians violate the scene model (shapes, NaN/Inf, zero quaternions)."""


class CheckpointError(LyraError):
    """A model checkpoint is missing, unreadable or does not match the model."""


class InputDataError(LyraError):
    """Input data (latents, poses, intrinsics, images) is missing or malformed."""


class EditError(LyraError, ValueError):
    """A selection or edit got arguments it cannot use (a mask of the wrong length, an unknown mode, ...)."""


class CameraPathError(InputDataError):
    """A camera path / keyframe file is missing, not valid JSON, or has bad keyframes."""


class ConfigError(LyraError, ValueError):
    """A configuration (model config, option value) is invalid; the message says which field and why."""


class ShapeError(InputDataError, ValueError):
    """Tensors handed to a network or function have shapes it cannot use; the message gives expected and found."""


class UnsizedError(LyraError, TypeError):
    """``len()`` of something that has no length (a single, unbatched camera)."""


class DecodeBudgetError(SceneFileError, InputDataError):
    """A file declares more than the decode budget allows (:mod:`lyra.limits`): too many splats, pixels or
    frames, too many bytes once decoded, or a stream compressed past the bomb ratio. Raised from headers,
    before anything is allocated."""


class ArchiveError(SceneFileError, InputDataError):
    """A zip archive (a SOG bundle, a zip of frames, a depth zip, a torch file) is unreadable, or one of its
    members is corrupt, encrypted, of an unknown method, or not the size its directory declares."""

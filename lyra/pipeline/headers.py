"""Sizes from headers, checked against the decode budget (:mod:`lyra.limits`) before any pixel is decoded.

What a user gives the pipeline (an image, a video, a depth file or a depth zip)
can declare far more than its size: a 244 KB MP4 of 3000 black 1080p frames
is 18 GB of RGB, a constant 12000 x 12000 PNG is 144 megapixels, a ``.npy``
header can claim 100000 x 100000. Each reader here reads the header first:

* :func:`check_image_header`: Pillow's lazy open gives the size without decoding;
* :func:`npy_header`: shape and dtype from numpy's documented ``.npy`` header;
* :func:`exr_header_size`: an EXR's data window (header-only read);
* :func:`read_video_frames`: ffmpeg's metadata (size, fps, duration) gives the
  frames x size up front, and the decode stops as soon as the frames read pass
  the budget (a duration can lie).

Refusals are :class:`lyra.errors.DecodeBudgetError` (an InputDataError).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from lyra import limits
from lyra.errors import InputDataError
from lyra.fileio import open_regular


def check_image_header(path: str | os.PathLike, what: str = "an image") -> tuple[int, int]:
    """``(width, height)`` from the image's header (not decoded), refused over ``max_image_pixels``.

    Files Pillow cannot identify pass (the caller's decoder then says what is wrong).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with open_regular(path, what) as handle, Image.open(handle) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 0, 0
    limits.check_image_pixels(path, width, height, what)
    return width, height


def npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` of a ``.npy`` file from its header, refused when the array passes the budget."""
    fmt = np.lib.format
    try:
        with open_regular(path, "a .npy file") as handle:
            version = fmt.read_magic(handle)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dtype = read(handle)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputDataError(f"{path}: expected a .npy array, found an unreadable header ({type(exc).__name__})") from None
    count = math.prod(shape)
    limits.check_decoded(path, count * max(dtype.itemsize, 4), f"an array of shape {list(shape)}")
    squeezed = [s for s in shape if s != 1]
    if len(squeezed) == 2:
        limits.check_image_pixels(path, squeezed[1], squeezed[0], "a depth map")
    return tuple(shape), dtype


def exr_header_size(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(width, height, channels)`` of an EXR's first part from its header; refused over the image limits."""
    import OpenEXR

    try:
        with OpenEXR.File(str(path), header_only=True) as exr:
            header = exr.header()
            low, high = header["dataWindow"]
            channels = len(header.get("channels", ())) or 1
    except (OSError, RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise InputDataError(f"{path}: expected an EXR depth map, found an unreadable header ({type(exc).__name__})") from None
    width, height = int(high[0]) - int(low[0]) + 1, int(high[1]) - int(low[1]) + 1
    if width <= 0 or height <= 0:
        raise InputDataError(f"{path}: expected an EXR with a positive data window, found {width} x {height}")
    limits.check_image_pixels(path, width, height, "a depth map")
    limits.check_decoded(path, 4 * width * height * channels, f"an EXR of {width} x {height} x {channels} channels")
    return width, height, channels


def read_video_frames(path: str | os.PathLike, what: str = "a video") -> tuple[np.ndarray, float]:
    """All frames ``[F, H, W, 3]`` uint8 RGB of a video and its frame rate (0 when unknown).

    The decode budget is checked from ffmpeg's metadata before the first frame and
    again as frames arrive. Raises InputDataError (DecodeBudgetError over the budget).
    """
    import imageio_ffmpeg

    path = Path(path)
    reader = None
    frames: list[np.ndarray] = []
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        width, height = (int(v) for v in meta["size"])
        fps = float(meta.get("fps") or 0.0)
        duration = float(meta.get("duration") or 0.0)
        frame_bytes = 3 * width * height
        limits.check_image_pixels(path, width, height, "video frames")
        if math.isfinite(fps) and math.isfinite(duration) and fps > 0 and duration > 0:
            estimate = max(1, round(fps * duration))
            limits.check_decoded(path, estimate * frame_bytes, f"a video of ~{estimate} frames of {width}x{height}")
        budget = limits.current().max_decoded_bytes
        for buffer in reader:
            if (len(frames) + 1) * frame_bytes > budget:
                limits.check_decoded(path, (len(frames) + 1) * frame_bytes, f"a video of more than {len(frames)} frames "
                                     f"of {width}x{height}")
            frames.append(np.frombuffer(buffer, np.uint8).reshape(height, width, 3))
    except InputDataError:
        raise
    except MemoryError:
        raise limits.out_of_memory_error(path, what) from None
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError, TypeError) as exc:
        raise InputDataError(f"{path}: expected {what}, found a file ffmpeg cannot read ({exc})") from exc
    finally:
        if reader is not None:
            reader.close()  # stops ffmpeg and closes its pipes, also after an error
    if not frames:
        return np.zeros((0, max(height, 0), max(width, 0), 3), np.uint8), fps
    return np.stack(frames), fps

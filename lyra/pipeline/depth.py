"""Depth for one image: monocular depth networks through transformers, or a depth file the user gives.

Every path returns a :class:`DepthMap`: z-depth in metres ``[H, W]`` at the
image's size (distance along the optical axis, not along the ray), pinhole
intrinsics ``(fx, fy, cx, cy)`` in pixels with pixel centres at ``+0.5``, and
a validity mask (finite, positive, below the model's range limit).

Networks (loaded with ``from_pretrained`` from a local folder or a hub id;
tests use tiny random models of the same classes):

* Depth Pro (``DepthProForDepthEstimation``, e.g. ``apple/DepthPro-hf``): it
  predicts a *canonical inverse depth* and, with its FoV head, the horizontal
  field of view. Metric depth is ``z = f / (W * output)`` with ``f`` the focal
  length in pixels: the user's when intrinsics are given, else the one from the
  predicted field of view (``f = W / 2 / tan(fov / 2)``).
* Depth Anything V2 metric (``AutoModelForDepthEstimation`` with a
  ``depth_anything`` config whose ``depth_estimation_type`` is ``"metric"``,
  e.g. ``depth-anything/Depth-Anything-V2-Metric-Outdoor-Large-hf``): metric
  depth directly, no field of view. Intrinsics then come from the user, or
  the stated default :data:`DEFAULT_FOV_X_DEGREES`.

Files (:func:`read_depth_file`): ``.exr`` (channel ``Z``, else ``Y``/``R``, in
metres), ``.png`` 16-bit with ``png_units_per_metre`` units per metre (default
1000: millimetres, the Kinect/ScanNet convention; 0 = no depth), ``.npy``
float metres ``[H, W]``, ``.zip`` a ViPE/SDG depth zip (its first frame). Each file's size is read from its header and checked
against the decode budget (:mod:`lyra.limits`) before its pixels are decoded.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lyra.errors import CheckpointError, InputDataError
from lyra.limits import out_of_memory_error
from lyra.pipeline.headers import check_image_header, exr_header_size, npy_header
from lyra.progress import Progress, report

# A typical photo lens (about 30 mm full-frame equivalent). Used when neither the user nor the model
# gives a focal length; the lift's geometry scales with it, the colours do not.
DEFAULT_FOV_X_DEGREES = 60.0
PNG_UNITS_PER_METRE = 1000.0
MAX_DEPTH_METRES = 1e4  # Depth Pro's own clamp (transformers' post-processing); beyond is "no depth"
# Where to get a network, by kind; named in the error when one is missing.
DEPTH_MODEL_IDS = {
    "depth_pro": "apple/DepthPro-hf",
    "depth_anything": "depth-anything/Depth-Anything-V2-Metric-Outdoor-Large-hf",
}


@dataclasses.dataclass
class DepthMap:
    """Depth of one image, its intrinsics and where it is valid."""

    depth: Tensor  # [H, W] float32 z-depth in metres, 0 where not valid
    intrinsics: Tensor  # [4] float32 (fx, fy, cx, cy) in pixels
    valid: Tensor  # [H, W] bool
    source: str  # "depth_pro", "depth_anything", or the file it came from
    field_of_view_degrees: float | None = None  # horizontal, when the model predicted one


def default_intrinsics(width: int, height: int, fov_x_degrees: float = DEFAULT_FOV_X_DEGREES) -> Tensor:  # [4]
    """Square pixels, principal point at the image centre, horizontal field of view ``fov_x_degrees``."""
    if not 0.0 < fov_x_degrees < 180.0:
        raise InputDataError(f"horizontal field of view must be in (0, 180) degrees, found {fov_x_degrees}")
    focal = 0.5 * width / math.tan(math.radians(0.5 * fov_x_degrees))
    return torch.tensor([focal, focal, 0.5 * width, 0.5 * height], dtype=torch.float32)


def as_intrinsics(intrinsics: Tensor | Sequence[float]) -> Tensor:  # [4]
    """``(fx, fy, cx, cy)`` as a float32 tensor, checked (finite, positive focal lengths)."""
    values = torch.as_tensor(intrinsics, dtype=torch.float32).flatten()
    if values.numel() != 4 or not torch.isfinite(values).all() or (values[:2] <= 0).any():
        raise InputDataError(f"intrinsics must be (fx, fy, cx, cy) with positive focal lengths, found {values.tolist()}")
    return values


def make_depth_map(depth: Tensor, intrinsics: Tensor, source: str, fov: float | None = None) -> DepthMap:
    """A :class:`DepthMap` whose mask marks finite depth in (0, MAX_DEPTH_METRES); the rest is stored as 0."""
    valid = torch.isfinite(depth) & (depth > 0) & (depth < MAX_DEPTH_METRES)
    depth = torch.where(valid, depth, torch.zeros_like(depth)).to(torch.float32)
    return DepthMap(depth, intrinsics.to(torch.float32), valid, source, fov)


# --------------------------------------------------------------------------- networks
class DepthEstimator:
    """A monocular metric-depth network and its image processor (see the module docstring).

    Build with :meth:`from_pretrained`; call :meth:`predict` per image.
    """

    def __init__(self, model: torch.nn.Module, processor, kind: str):
        if kind not in DEPTH_MODEL_IDS:
            raise CheckpointError(f"unsupported depth model kind {kind!r}; expected one of {sorted(DEPTH_MODEL_IDS)}")
        self.model = model.eval()
        self.processor = processor
        self.kind = kind

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        allow_download: bool = True,
    ) -> DepthEstimator:
        """Load a Depth Pro or Depth Anything V2 metric model from a local folder or a hub id.

        Raises :class:`lyra.errors.CheckpointError` when the folder or id cannot be
        loaded (naming what to download), or when it is another kind of model, or a
        relative-depth Depth Anything (its output is not in metres). A hub id is
        fetched into the Hugging Face cache unless ``allow_download`` is False or
        ``HF_HUB_OFFLINE=1`` (read at call time: tests never touch the network).
        """
        from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

        text = os.fspath(source)
        local = Path(text).expanduser()
        looks_local = local.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1
        if looks_local and not local.is_dir():
            raise CheckpointError(
                f"depth model folder {text} not found; download one, e.g. "
                f"`huggingface-cli download {DEPTH_MODEL_IDS['depth_pro']} --local-dir {text}`"
            )
        where = str(local) if looks_local else text
        offline = {"local_files_only": not allow_download or os.environ.get("HF_HUB_OFFLINE", "") in ("1", "true")}
        try:
            config = AutoConfig.from_pretrained(where, **offline)
        except (OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot load the depth model {text!r} ({exc}); get {DEPTH_MODEL_IDS['depth_pro']} or "
                f"{DEPTH_MODEL_IDS['depth_anything']} with `huggingface-cli download ID --local-dir FOLDER`"
            ) from exc
        kind = config.model_type
        if kind not in DEPTH_MODEL_IDS:
            raise CheckpointError(f"{text}: a {kind!r} model is not a supported depth model ({sorted(DEPTH_MODEL_IDS)})")
        if kind == "depth_anything" and getattr(config, "depth_estimation_type", "relative") != "metric":
            raise CheckpointError(
                f"{text}: a relative-depth Depth Anything gives no metres; use a metric one such as "
                f"{DEPTH_MODEL_IDS['depth_anything']}"
            )
        try:
            processor = AutoImageProcessor.from_pretrained(where, **offline)
            model = AutoModelForDepthEstimation.from_pretrained(where, dtype=dtype, **offline)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"cannot load the depth model {text!r}: {exc}") from exc
        return cls(model.to(device), processor, kind)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def predict(
        self,
        image: Tensor | np.ndarray,  # [H, W, 3] uint8 or float in 0..1
        *,
        intrinsics: Tensor | Sequence[float] | None = None,  # [4] known (fx, fy, cx, cy) in pixels
        progress: Progress | None = None,
    ) -> DepthMap:
        """Metric z-depth at the image's size; intrinsics as the module docstring says."""
        rgb = _image_uint8(image)  # [H, W, 3]
        height, width = rgb.shape[:2]
        report(progress, 0.0, f"depth ({self.kind})")
        inputs = self.processor(images=rgb, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, next(self.model.parameters()).dtype)
        report(progress, 0.1, f"depth ({self.kind}): network")
        outputs = self.model(pixel_values=pixels)
        raw = outputs.predicted_depth.float().reshape(1, 1, *outputs.predicted_depth.shape[-2:])
        raw = F.interpolate(raw, size=(height, width), mode="bilinear", align_corners=False)[0, 0].cpu()  # [H, W]
        fov = None
        if self.kind == "depth_pro":
            fov_out = getattr(outputs, "field_of_view", None)
            if intrinsics is not None:
                known = as_intrinsics(intrinsics)
            elif fov_out is not None:
                fov = float(fov_out.flatten()[0])
                known = default_intrinsics(width, height, min(max(fov, 1.0), 179.0))
            else:
                known = default_intrinsics(width, height)
            # Canonical inverse depth -> metres (transformers' post-processing, written for a known focal).
            depth = known[0] / (width * raw.clamp_min(1.0 / MAX_DEPTH_METRES))
        else:
            known = default_intrinsics(width, height) if intrinsics is None else as_intrinsics(intrinsics)
            depth = raw
        report(progress, 1.0, f"depth ({self.kind}): done")
        return make_depth_map(depth, known, self.kind, fov)


def _image_uint8(image: Tensor | np.ndarray) -> np.ndarray:  # -> [H, W, 3] uint8
    array = image.detach().cpu().numpy() if isinstance(image, Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise InputDataError(f"image must be [H, W, 3] RGB, found shape {array.shape}")
    array = array[..., :3]
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(array)


# --------------------------------------------------------------------------- files
DEPTH_FILE_SUFFIXES = (".exr", ".png", ".npy", ".zip")


def read_depth_file(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None = None,  # (height, width) of the image; the depth is resized to it
    intrinsics: Tensor | Sequence[float] | None = None,  # [4] in pixels of the image
    png_units_per_metre: float = PNG_UNITS_PER_METRE,
    fov_x_degrees: float = DEFAULT_FOV_X_DEGREES,
) -> DepthMap:
    """Depth from a user's file (see the module docstring), at ``size`` when given.

    A depth map of another size with the same aspect ratio is resized (nearest,
    so holes stay holes); another aspect ratio is an error. Without
    ``intrinsics`` the default field of view is used.
    Raises :class:`lyra.errors.InputDataError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: depth file not found")
    try:
        depth = _read_depth_array(path, path.suffix.lower(), png_units_per_metre)
        if depth.ndim != 2:
            raise InputDataError(f"{path}: expected a single-channel depth map [H, W], found shape {depth.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))
        if size is not None:
            tensor = resize_depth(tensor, *size, what=str(path))
    except MemoryError:
        # The header checks keep a file within the decode budget; this guards a process with less memory.
        raise out_of_memory_error(path, "a depth map") from None
    height, width = tensor.shape
    known = default_intrinsics(width, height, fov_x_degrees) if intrinsics is None else as_intrinsics(intrinsics)
    return make_depth_map(tensor, known, str(path))


def _read_depth_array(path: Path, suffix: str, png_units_per_metre: float) -> np.ndarray:
    """The raw depth array of a file, its size checked from the header first (:mod:`lyra.pipeline.headers`)."""
    if suffix == ".npy":
        _shape, dtype = npy_header(path)  # a header claiming 100000 x 100000 is refused here
        if dtype.kind not in "fiu":
            raise InputDataError(f"{path}: expected a numeric depth array, found dtype {dtype}")
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputDataError(f"{path}: expected a .npy float array, found an unreadable file ({type(exc).__name__})") from None
        return np.squeeze(depth)
    if suffix == ".png":
        return _read_png_depth(path, png_units_per_metre)
    if suffix == ".exr":
        return _read_exr_depth(path)
    if suffix == ".zip":  # a ViPE/SDG depth zip (one EXR per frame): its first frame
        from lyra.pipeline.sdg import read_depth_zip

        return read_depth_zip(path)[0].numpy()
    raise InputDataError(f"{path}: expected a depth file ending in {', '.join(DEPTH_FILE_SUFFIXES)}, found {suffix!r}")


def resize_depth(depth: Tensor, height: int, width: int, *, what: str = "depth") -> Tensor:  # [h, w] -> [H, W]
    """Nearest-neighbour resize to ``height x width`` (same aspect ratio within 2%), keeping holes as holes."""
    h, w = depth.shape
    if (h, w) == (height, width):
        return depth
    if abs((w / h) / (width / height) - 1.0) > 0.02:
        raise InputDataError(f"{what}: depth is {w}x{h}, the image {width}x{height}: their aspect ratios differ")
    return F.interpolate(depth[None, None], size=(height, width), mode="nearest-exact")[0, 0]


def _read_png_depth(path: Path, units_per_metre: float) -> np.ndarray:
    import imageio.v3 as iio

    if not units_per_metre > 0:
        raise InputDataError(f"PNG depth units per metre must be positive, found {units_per_metre}")
    check_image_header(path, "a depth map")  # a 12000 x 12000 PNG is refused before it is decoded
    try:
        raw = iio.imread(path)
    except Exception as exc:  # imageio raises many types for a bad file
        raise InputDataError(f"{path}: expected a 16-bit PNG depth map, found an unreadable file ({exc})") from exc
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputDataError(
            f"{path}: expected a single-channel 16-bit PNG depth map, found {raw.dtype} with shape {raw.shape}"
        )
    depth = raw.astype(np.float32) / float(units_per_metre)
    depth[raw == 0] = np.nan  # 0 is "no measurement" in every 16-bit depth convention
    return depth


def _read_exr_depth(path: Path) -> np.ndarray:
    import OpenEXR

    exr_header_size(path)  # the data window against the decode budget, before the pixels are read
    try:
        with OpenEXR.File(str(path)) as exr:
            channels = exr.channels()
            names = [n for n in ("Z", "Y", "R", "depth", "Depth", "RGB", "RGBA") if n in channels]
            if not names and len(channels) == 1:
                names = list(channels)
            if names:
                pixels = np.asarray(channels[names[0]].pixels, dtype=np.float32)
                return pixels[..., 0] if pixels.ndim == 3 else pixels  # merged RGB(A): its first channel
    except (OSError, RuntimeError) as exc:
        raise InputDataError(f"{path}: expected an EXR depth map, found an unreadable file ({exc})") from exc
    raise InputDataError(f"{path}: expected an EXR channel Z (or Y, R), found {sorted(channels)}")

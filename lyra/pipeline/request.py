"""The front door of generation: one :class:`GenerateRequest`, one :func:`run`.

Every door builds a request and hands it to :func:`run`: ``lyra generate`` (its flags, or
``--request FILE.yaml``), the viewer's Generate panel (its widgets), ``lyra distill make-data``
(one request per image) and Python code. A request holds everything a run depends on, validates
itself on construction with errors that name the *field* (:class:`RequestError`), and round-trips
through YAML (:meth:`GenerateRequest.to_yaml` / :meth:`GenerateRequest.from_yaml`), so a saved
request re-runs the same job::

    from lyra.pipeline.request import GenerateRequest, run

    request = GenerateRequest(input="photo.png", depth="photo_depth.npy", fov=41, output="scene.ply")
    scene = run(request)                        # Gaussians (an image) or GaussianSequence (a video)
    request.to_yaml("photo.yaml")               # lyra generate --request photo.yaml does the same again

Backends: ``lift`` (image + depth -> one splat per pixel, seconds on a CPU) and ``lyra`` (a teacher
along camera trajectories -> SDG folders -> the latent 3DGS decoder; the GEN3C teacher needs a large
CUDA GPU, the ``lift`` teacher renders the lifted input along the trajectories, holes shown, on a CPU).
Under torchrun (``RANK`` / ``WORLD_SIZE``) the lyra backend's trajectories are shared round-robin
over the ranks (:mod:`lyra.pipeline.teach`); rank 0 waits for all of them, decodes and returns the
scene, the other ranks return ``None``.

Camera of the input, in this order: ``intrinsics`` (fx, fy, cx, cy in pixels of the input), ``fov``
(horizontal degrees), the input's own (a ViPE-style folder), the depth model's estimate, else a
60 degree horizontal field of view (with a notice).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from lyra.device import DEVICE_CHOICES, resolve_device
from lyra.errors import InputDataError, SceneFileError
from lyra.model.tokenizer import TEMPORAL_COMPRESSION
from lyra.progress import Cancelled, Progress, report
from lyra.render.trajectories import CUSTOM_TRAJECTORY, LYRA_TRAJECTORY_INDEX, TRAJECTORY_FOLDERS

__all__ = ["BACKENDS", "TEACHERS", "GenerateRequest", "RequestError", "parse_times", "resolve_device", "run"]

BACKENDS = ("lift", "lyra")
TEACHERS = ("gen3c", "lift")  # the lyra backend's teacher: GEN3C (a large CUDA GPU) or the CPU lift preview
CUSTOM = CUSTOM_TRAJECTORY  # the trajectory of a keyframed camera path (the Render panel's JSON)
MEMORY_MODES = ("none", "model", "group", "model+fp8", "group+fp8")  # the GEN3C teacher's (lyra.teacher.memory)
DEFAULT_SIZE = (1280, 704)  # Lyra's generation size, width x height
MAX_YAML_BYTES = 1 << 20
LIFT_VIDEO_STEP = 4  # the lift backend lifts every 4th video frame unless times say otherwise
LYRA_VIDEO_TIMES = (0, 121, 4)  # the official demo's target frames of the dynamic decoder


class RequestError(InputDataError):
    """A request field has a value a run cannot use; ``field`` names it (the message starts with it)."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def parse_times(text: str | Sequence[int] | None, *, field: str = "times") -> list[int] | None:
    """Frame indices: ``None``/``""``/``all`` -> None (the default); ``a,b,c`` -> list; ``start:stop[:step]`` -> range."""
    if text is None:
        return None
    if not isinstance(text, str):
        try:
            values = [int(v) for v in text]
        except (TypeError, ValueError):
            raise RequestError(field, f"expected frame indices, found {text!r}") from None
        if any(v < 0 for v in values):
            raise RequestError(field, f"expected frame indices >= 0, found {values}")
        return values
    text = text.strip()
    if text in ("", "all"):
        return None
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] <= 0):
                raise ValueError
            values = list(range(*parts))
        else:
            values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise RequestError(field, f"expected all, a list like 0,60,120 or start:stop:step, found {text!r}") from None
    if not values or min(values) < 0:
        raise RequestError(field, f"expected at least one frame index >= 0, found {text!r}")
    return values


def _path(value, field: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | os.PathLike):
        raise RequestError(field, f"expected a path, found {type(value).__name__}")
    text = os.fspath(value)
    if "\0" in text or len(text) > 4096:
        raise RequestError(field, "expected a path, found an invalid one")
    return text


def _number(value, field: str, kind: type, low: float | None = None, high: float | None = None):
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise RequestError(field, f"expected {'an integer' if kind is int else 'a number'}, found {value!r}") from None
    if number != number or (low is not None and number < low) or (high is not None and number > high):
        bounds = f"{'' if low is None else low} .. {'' if high is None else high}"
        raise RequestError(field, f"expected a value in {bounds}, found {value!r}")
    return number


def _size(value) -> tuple[int, int]:
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
    else:
        parts = list(value) if isinstance(value, Sequence) else [value]
    if len(parts) != 2:
        raise RequestError("size", f"expected width x height (e.g. 1280x704), found {value!r}")
    width, height = (_number(p, "size", int, 16, 8192) for p in parts)
    if width % 16 or height % 16:
        raise RequestError("size", f"expected multiples of 16, found {width}x{height}")
    return width, height


@dataclasses.dataclass
class GenerateRequest:
    """Everything one generation run depends on; fields validated and normalised on construction.

    Text forms are accepted where a UI or a command line has text: ``trajectories="left,right"``,
    ``intrinsics="fx,fy,cx,cy"``, ``times="0:121:4"``, ``size="1280x704"``; they are stored parsed.
    """

    input: str  # an image, a video, or a ViPE-style folder (rgb/ depth/ pose/ intrinsics/)
    output: str | None = None  # scene file (.ply, .spz, ...) or sequence folder to write; None: only return it
    backend: str = "lift"  # lift | lyra
    teacher: str = "gen3c"  # lyra backend: gen3c | lift
    depth: str | None = None  # depth of the image: .exr, 16-bit .png or .npy (z-depth in metres)
    depth_units: float = 1000.0  # 16-bit PNG depth units per metre (1000: millimetres)
    depth_model: str | None = None  # folder or hub id of a depth network; None: the model registry's
    intrinsics: list[float] | None = None  # fx, fy, cx, cy in pixels of the input
    fov: float | None = None  # horizontal field of view in degrees (when no intrinsics)
    trajectories: list[str] = dataclasses.field(default_factory=lambda: list(LYRA_TRAJECTORY_INDEX))
    custom_path: str | None = None  # a camera-path JSON: one more trajectory, "custom"
    movement: float = 1.0  # Lyra's distance factor of the trajectories (2: more motion)
    steps: int = 35  # diffusion steps per trajectory
    guidance: float = 1.0  # classifier-free guidance
    seed: int = 0
    times: list[int] | None = None  # 4D frame indices (lift: frames lifted; lyra: decoder target frames)
    size: tuple[int, int] = DEFAULT_SIZE  # lyra backend: generation width x height, multiples of 16
    num_frames: int = 121  # frames per trajectory, 8 (T - 1) + 1 for T latent frames
    memory: str = "none"  # the GEN3C teacher's memory mode (MEMORY_MODES)
    device: str = "auto"  # auto | cpu | cuda (lyra.device)
    prune_ratio: float | None = None  # the decoder's opacity prune ratio; None: the checkpoint's (0.8)
    pixels_per_splat: int | None = None  # lift: 1 = a splat per pixel (server renders), s = per s x s block; None: auto
    dynamic: bool = False  # require a video input (a 4D result)
    work_dir: str | None = None  # where the lyra backend keeps its stages to resume; None: OUTPUT.work

    def __post_init__(self) -> None:
        self.input = _path(self.input, "input")
        if self.input is None:
            raise RequestError("input", "expected an image, a video or a ViPE-style folder, found none")
        for name in ("output", "depth", "depth_model", "custom_path", "work_dir"):
            setattr(self, name, _path(getattr(self, name), name))
        if self.backend not in BACKENDS:
            raise RequestError("backend", f"expected one of {', '.join(BACKENDS)}, found {self.backend!r}")
        if self.teacher not in TEACHERS:
            raise RequestError("teacher", f"expected one of {', '.join(TEACHERS)}, found {self.teacher!r}")
        self.depth_units = _number(self.depth_units, "depth_units", float, 1e-9)
        self.intrinsics = self._intrinsics(self.intrinsics)
        if self.fov is not None:
            self.fov = _number(self.fov, "fov", float, 1.0, 179.0)
            if self.intrinsics is not None:
                raise RequestError("fov", "give either intrinsics or a field of view, not both")
        self.trajectories = self._trajectories(self.trajectories)
        self.movement = _number(self.movement, "movement", float, 1e-3, 100.0)
        self.steps = _number(self.steps, "steps", int, 1, 10_000)
        self.guidance = _number(self.guidance, "guidance", float, 0.0, 100.0)
        self.seed = _number(self.seed, "seed", int, 0, 2**63 - 1)
        self.times = parse_times(self.times)
        self.size = _size(self.size)
        self.num_frames = _number(self.num_frames, "num_frames", int, 9, 100_000)
        if (self.num_frames - 1) % TEMPORAL_COMPRESSION:
            raise RequestError("num_frames", f"expected 8k + 1 (9, 17, ..., 121), found {self.num_frames}")
        if self.memory not in MEMORY_MODES:
            raise RequestError("memory", f"expected one of {', '.join(MEMORY_MODES)}, found {self.memory!r}")
        if not isinstance(self.device, str) or not (self.device in DEVICE_CHOICES or self.device.startswith("cuda:")):
            raise RequestError("device", f"expected one of {', '.join(DEVICE_CHOICES)} (or cuda:N), found {self.device!r}")
        if self.prune_ratio is not None:
            self.prune_ratio = _number(self.prune_ratio, "prune_ratio", float, 0.0, 0.999)
        if self.pixels_per_splat is not None:
            self.pixels_per_splat = _number(self.pixels_per_splat, "pixels_per_splat", int, 1, 64)
        if not isinstance(self.dynamic, bool):
            raise RequestError("dynamic", f"expected true or false, found {self.dynamic!r}")
        if self.custom_path is not None and not Path(self.custom_path).is_file():
            raise RequestError("custom_path", f"{self.custom_path}: camera path file not found")

    # ------------------------------------------------------------ normalising helpers
    @staticmethod
    def _intrinsics(value) -> list[float] | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        parts = value.split(",") if isinstance(value, str) else value
        try:
            values = [float(v) for v in parts]
        except (TypeError, ValueError):
            values = []
        if len(values) != 4 or not all(v == v and abs(v) < 1e7 for v in values) or values[0] <= 0 or values[1] <= 0:
            raise RequestError("intrinsics", f"expected fx, fy, cx, cy in pixels with positive focal lengths, found {value!r}")
        return values

    def _trajectories(self, value) -> list[str]:
        names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value or [])
        names = [n for n in names if isinstance(n, str) and n]
        if self.custom_path is not None and CUSTOM not in names:
            names.append(CUSTOM)
        unknown = [n for n in names if n not in TRAJECTORY_FOLDERS]
        if unknown or len(set(names)) != len(names) or (not names and self.backend == "lyra"):
            choices = ", ".join(TRAJECTORY_FOLDERS)
            raise RequestError("trajectories", f"expected distinct names among {choices}, found {value!r}")
        if CUSTOM in names and self.custom_path is None:
            raise RequestError("custom_path", "the custom trajectory needs a camera-path JSON")
        return names

    # ------------------------------------------------------------ derived values
    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def resolved_work_dir(self) -> Path:
        """Where the lyra backend's stages live: ``work_dir``, else ``OUTPUT.work``, else beside the input."""
        if self.work_dir is not None:
            return Path(self.work_dir)
        base = Path(self.output) if self.output is not None else Path(self.input)
        return base.with_name(base.name + ".work")

    # ------------------------------------------------------------ YAML
    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, not tuples), in field order."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GenerateRequest:
        if not isinstance(values, dict):
            raise RequestError("request", f"expected a mapping of fields, found {type(values).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise RequestError(unknown[0], f"not a request field (fields: {', '.join(sorted(known))})")
        if "input" not in values:
            raise RequestError("input", "expected an image, a video or a ViPE-style folder, found none")
        return cls(**values)

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        """The request as YAML text; with ``path``, also written there (atomically)."""
        text = "# lyra generate --request FILE.yaml (lyra.pipeline.request.GenerateRequest)\n"
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            from lyra.fileio import atomic_write

            with atomic_write(path, "w") as handle:
                handle.write(text)
        return text

    @classmethod
    def from_yaml(cls, source: str | os.PathLike) -> GenerateRequest:
        """A request from YAML text, or from a YAML file (a path object, or a str naming an existing .yaml/.yml)."""
        is_file = isinstance(source, os.PathLike) or (
            isinstance(source, str) and "\n" not in source and source.lower().endswith((".yaml", ".yml"))
        )
        if is_file:
            from lyra.fileio import open_regular

            try:
                with open_regular(source, "a request YAML file") as handle:
                    data = handle.read(MAX_YAML_BYTES + 1)
            except (OSError, SceneFileError) as exc:
                found = exc.found if isinstance(exc, SceneFileError) else exc.strerror or str(exc)
                raise RequestError("request", f"{os.fspath(source)}: cannot read ({found})") from None
            if len(data) > MAX_YAML_BYTES:
                raise RequestError("request", f"{os.fspath(source)}: more than {MAX_YAML_BYTES} bytes")
            source = data.decode("utf-8", errors="replace")
        try:
            values = yaml.load(source, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader without aliases
        except yaml.YAMLError as exc:
            raise RequestError("request", f"expected YAML, found a syntax error ({str(exc).splitlines()[0]})") from None
        return cls.from_dict(values if values is not None else {})


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a request has no use for them, and aliases can explode."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases are not allowed in a request")
        return super().compose_node(parent, index)


# --------------------------------------------------------------------------- run
def _checked(progress: Progress | None, cancel) -> Progress | None:
    """``progress`` that raises :class:`Cancelled` once ``cancel`` (an Event or a callable) says so."""
    if cancel is None:
        return progress
    cancelled = cancel.is_set if isinstance(cancel, threading.Event) else cancel

    def checked(fraction: float, text: str = "") -> None:
        if cancelled():
            raise Cancelled("generation cancelled")
        report(progress, fraction, text)

    return checked


def run(
    request: GenerateRequest,
    progress: Progress | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    *,
    notify: Callable[[str], None] | None = None,
    teacher=None,
    decoder=None,
    tokenizer=None,
    tokenizer_folder: str | os.PathLike | None = None,
    estimator=None,
):
    """Run ``request``: returns :class:`~lyra.scene.Gaussians` (an image) or :class:`~lyra.scene.GaussianSequence`.

    Writes ``request.output`` when set. ``progress(fraction, text)`` follows :mod:`lyra.progress`;
    ``cancel`` (an Event or a callable) stops the run with :class:`Cancelled` at the next report;
    ``notify`` receives notices (a downscaled input, an assumed field of view). Models not given
    (``teacher``, ``decoder`` + ``tokenizer``, ``estimator``) come from the model registry. Under
    torchrun the ranks other than 0 return ``None`` after their share of the trajectories.
    Raises :class:`lyra.errors.LyraError` subclasses for bad input and missing models.
    """
    from lyra.pipeline.depth import DEFAULT_FOV_X_DEGREES, default_intrinsics
    from lyra.pipeline.inputs import read_input
    from lyra.scene import save

    if not isinstance(request, GenerateRequest):
        raise RequestError("request", f"expected a GenerateRequest, found {type(request).__name__}")
    progress = _checked(progress, cancel)
    notify = notify or (lambda message: None)
    if request.backend == "lift":
        from lyra.pipeline.teach import rank_and_world

        rank, _ = rank_and_world()
        if rank != 0:  # nothing to share: one lift, by rank 0 (the others would race to write the output)
            notify(f"rank {rank}: the lift backend runs on rank 0 only")
            return None
    device = resolve_device(request.device)
    report(progress, 0.0, "reading the input")
    frames = read_input(request.input)
    for notice in frames.notices:
        notify(notice)
    if request.dynamic and not frames.is_video:
        raise RequestError("dynamic", f"{request.input}: a 4D result needs a video or a ViPE-style folder, found one image")
    intrinsics = request.intrinsics
    if intrinsics is None and request.fov is not None:
        height, width = frames.size
        intrinsics = default_intrinsics(width, height, request.fov).tolist()
    if request.backend == "lyra":
        from lyra.pipeline.generate_models import require_models

        require_models(teacher is None and request.teacher == "gen3c", decoder is None or tokenizer is None,
                       frames.is_video)  # before any slow work
    if estimator is None and request.depth is None and frames.depth is None:
        estimator = _depth_estimator(request, device)
    if intrinsics is None and frames.intrinsics is None and estimator is None:
        notify(f"no intrinsics or field of view: assuming a {DEFAULT_FOV_X_DEGREES:g} degree horizontal field of view")
    if request.backend == "lift":
        from lyra.pipeline.preview import lift_frames

        indices = None
        if frames.is_video:
            count = frames.frames.shape[0]
            indices = [t for t in (request.times or range(0, count, LIFT_VIDEO_STEP)) if t < count]
            if not indices:
                raise RequestError("times", f"expected frame indices below the video's {count} frames, found {request.times}")
        result = lift_frames(frames, frame_indices=indices, depth_file=request.depth, estimator=estimator,
                             intrinsics=intrinsics, png_units_per_metre=request.depth_units,
                             pixels_per_splat=request.pixels_per_splat, progress=progress)
    else:
        from lyra.pipeline.generate import generate_scene

        if frames.is_video and request.times is None:
            request = dataclasses.replace(request, times=list(range(*LYRA_VIDEO_TIMES)))
        result = generate_scene(
            frames, request, work_dir=request.resolved_work_dir(), teacher=teacher, decoder=decoder,
            tokenizer=tokenizer, tokenizer_folder=tokenizer_folder, estimator=estimator, intrinsics=intrinsics,
            progress=progress,
        )
    if result is not None and request.output is not None:
        save(result, request.output)
    return result


def _depth_estimator(request: GenerateRequest, device):
    """The request's depth network (``depth_model``), else the model registry's (a clear error when missing)."""
    if request.depth_model is not None:
        from lyra.pipeline.depth import DepthEstimator

        return DepthEstimator.from_pretrained(request.depth_model, device=device)
    from lyra.pipeline.preview import default_depth_estimator

    return default_depth_estimator(device)

"""Generate panel: an image (or a video) in, a new scene layer (or 4D sequence) out, through one request.

The widgets fill a :class:`lyra.pipeline.request.GenerateRequest` (the same one ``lyra generate``
builds from its flags) and a job runs it with :func:`lyra.pipeline.request.run`; the panel has no
generation logic of its own. The request can be saved as YAML and loaded back (``lyra generate
--request FILE.yaml`` runs a saved one).

Input: a browser upload or a server path (image, video, or ViPE-style folder), never both at once:
while an upload is active the Server path field is disabled, the panel says which input is active,
and "Clear upload" goes back to the path. The same holds for the depth file, whose upload is
confirmed with its size and depth range. Camera: automatic (the input's, the depth model's, else
60 degrees), a horizontal field of view, or known intrinsics (fx, fy, cx, cy in pixels). Options:
backend (lift: seconds on any machine; lyra: a teacher along trajectories + the Lyra decoder),
teacher (GEN3C, a large CUDA GPU; or the lift teacher, a CPU preview of the trajectories), trajectory
checkboxes plus a custom camera-path JSON (the Render panel's format), movement, steps, guidance,
seed, generation size, frames, device, memory mode, and target times for 4D. Models the lyra backend
needs but this machine lacks are listed with what to get (``lyra models check``); while any is
missing that backend is blocked, and the Generate button says why.

A run is a background job (its own row, progress and Cancel); the result is added as a new layer
with the camera framed on it. A bad input is a notification naming the request field; nothing
already open changes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import viser

from lyra.errors import InputDataError
from lyra.pipeline.request import DEFAULT_SIZE, MEMORY_MODES, GenerateRequest
from lyra.render.framing import frame_scene
from lyra.render.trajectories import CUSTOM_TRAJECTORY, LYRA_TRAJECTORY_INDEX, TRAJECTORY_FOLDERS
from viewer.export import resolve_inside
from viewer.open_path import read_camera_path
from viewer.uploads import save_upload_into

BACKEND_LABELS = {"lift (fast preview)": "lift", "lyra (teacher + decoder)": "lyra"}
TEACHER_LABELS = {"GEN3C (large CUDA GPU)": "gen3c", "lift (CPU preview of the trajectories)": "lift"}
CAMERA_MODES = ("auto", "field of view", "intrinsics")
TRAJECTORIES = tuple(t for t in TRAJECTORY_FOLDERS if t != CUSTOM_TRAJECTORY)


def _label(labels: dict[str, str], value: str) -> str:
    return next(label for label, v in labels.items() if v == value)


class GeneratePanel:
    key = "generate"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        self._scratch = Path(tempfile.mkdtemp(prefix="lyra-generate-"))
        self._input: Path | None = None  # an uploaded input, active until cleared
        self._depth: Path | None = None  # an uploaded depth file, active until cleared
        with gui.add_folder("Input"):
            self.upload = gui.add_upload_button("Upload image or video", icon=viser.Icon.PHOTO,
                                                hint="PNG/JPEG/WebP image, or an MP4/MOV/WebM video for 4D")
            self.path = gui.add_text("Server path", "", hint="An image, a video or a ViPE-style folder on the server")
            self.clear_input = gui.add_button("Clear upload", icon=viser.Icon.X, disabled=True,
                                              hint="Forget the uploaded input and use the Server path field")
            self.input_info = gui.add_markdown("_No input yet: upload one or give a server path._")
            self.depth_upload = gui.add_upload_button("Upload depth (optional)", icon=viser.Icon.UPLOAD,
                                                      hint="z-depth in metres: EXR, NPY, or 16-bit PNG")
            self.depth_path = gui.add_text("Depth server path", "", hint="A depth file on the server")
            self.clear_depth = gui.add_button("Clear depth upload", icon=viser.Icon.X, disabled=True,
                                              hint="Forget the uploaded depth and use the Depth server path field")
            self.depth_info = gui.add_markdown("_Depth: from the depth model unless a file is given._")
            self.png_units = gui.add_number("16-bit PNG units per metre", 1000.0, min=1e-6,
                                            hint="1000: millimetres (Kinect, ScanNet); 5000: TUM RGB-D")
            self.camera = gui.add_dropdown("Camera", list(CAMERA_MODES), initial_value="auto",
                                           hint="auto: the input's own, the depth model's, else 60 degrees")
            self.fov = gui.add_slider("Field of view (deg)", 20, 120, 1, 60, hint="Horizontal", disabled=True)
            self.fx = gui.add_number("fx (px)", 500.0, min=1e-3, disabled=True)
            self.fy = gui.add_number("fy (px)", 500.0, min=1e-3, disabled=True)
            self.cx = gui.add_number("cx (px)", 0.0, disabled=True, hint="Principal point, pixels of the input")
            self.cy = gui.add_number("cy (px)", 0.0, disabled=True)
        with gui.add_folder("Options"):
            self.backend = gui.add_dropdown("Backend", list(BACKEND_LABELS), initial_value=next(iter(BACKEND_LABELS)))
            self.teacher = gui.add_dropdown("Teacher", list(TEACHER_LABELS), initial_value=next(iter(TEACHER_LABELS)))
            self.models = gui.add_markdown("")
            self.trajectories = {name: gui.add_checkbox(name, name in LYRA_TRAJECTORY_INDEX) for name in TRAJECTORIES}
            self.custom_path = gui.add_text("Custom trajectory", "", hint="Server path of a camera-path JSON "
                                            "(the Render panel's keyframed path) added as one more trajectory")
            self.use_render_path = gui.add_checkbox("Add the Render panel's path", False,
                                                    hint="Its keyframed camera-path JSON, as one more trajectory")
            self.movement = gui.add_slider("Movement", 0.25, 3.0, 0.05, 1.0, hint="Lyra's distance factor (2: more)")
            self.steps = gui.add_slider("Steps", 1, 100, 1, 35)
            self.guidance = gui.add_number("Guidance", 1.0, min=0.0, max=20.0, step=0.1)
            self.seed = gui.add_number("Seed", 0, min=0, step=1)
            self.size = gui.add_text("Generation size", f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}",
                                     hint="Width x height, multiples of 16 (Lyra: 1280x704)")
            self.num_frames = gui.add_number("Frames per trajectory", 121, min=9, max=1001, step=8,
                                             hint="8k + 1 (Lyra: 121)")
            self.device = gui.add_dropdown("Device", ["auto", "cpu", "cuda"], initial_value="auto",
                                           hint="auto: CUDA when present")
            self.memory = gui.add_dropdown("Memory mode", list(MEMORY_MODES), initial_value="none",
                                           hint="none: all on the GPU; model / group: CPU offload (whole models / "
                                                "block groups); +fp8: fp8 weight storage")
            self.times = gui.add_text("4D target times", "", hint="Frame indices start:stop:step or a,b,c (lift: frames "
                                      "of the video to lift, default every 4th; lyra: times the dynamic decoder is "
                                      "queried at, default 0:121:4)")
        with gui.add_folder("Request"):
            self.request_file = gui.add_text("Request file", "generate-request.yaml",
                                             hint="Saved under the export folder; loaded from there or a server path")
            self.save_request = gui.add_button("Save request", icon=viser.Icon.DEVICE_FLOPPY)
            self.load_request = gui.add_button("Load request", icon=viser.Icon.FOLDER_OPEN)
        self.generate_button = gui.add_button("Generate", icon=viser.Icon.SPARKLES)
        # size-checked while arriving, one value per upload (viewer.security.UploadLimiter)
        app.uploads.on_upload(self.upload, self._on_upload)
        app.uploads.on_upload(self.depth_upload, self._on_depth_upload)
        self.clear_input.on_click(lambda event: self.app.action("Clear upload", self._clear_input, event.client))
        self.clear_depth.on_click(lambda event: self.app.action("Clear depth upload", self._clear_depth, event.client))
        self.camera.on_update(lambda _: self._update_camera())
        self.backend.on_update(lambda _: self._update_backend())
        self.teacher.on_update(lambda _: self._update_backend())
        self.save_request.on_click(self._on_save_request)
        self.load_request.on_click(self._on_load_request)
        self.generate_button.on_click(self._on_generate)
        self._missing_cache: dict[object, object] = {}  # (backend, teacher, dynamic) -> rows; "depth" -> hint or None
        self._input_is_video = False  # a video needs the dynamic decoder, an image the static one
        self._update_backend()

    # ------------------------------------------------------------ inputs
    def _save_upload(self, uploaded, what: str) -> Path:
        if len(uploaded.content) > self.app.max_upload_bytes:
            raise InputDataError(f"{uploaded.name}: the {what} is {len(uploaded.content) / 2**20:.1f} MiB, "
                                 f"more than the {self.app.max_upload_bytes // 2**20} MiB upload limit")
        folder = self._scratch / what
        shutil.rmtree(folder, ignore_errors=True)
        return save_upload_into(uploaded, folder)  # a full disk is named, not an internal OSError

    def _on_upload(self, client_id: int, uploaded: viser.UploadedFile) -> None:
        from lyra.pipeline.inputs import read_input

        client = self.app.server.get_clients().get(client_id)

        def accept(job):
            path = self._save_upload(uploaded, "input")
            job(0.1, f"reading {path.name}")
            frames = read_input(path)  # refuse a non-image or a 1-frame video now, not after a wait
            job(0.9, "checked")  # a Cancel while reading stops here, before anything changes
            self._input, self._input_is_video = path, frames.is_video
            height, width = frames.size
            kind = f"video, {frames.frames.shape[0]} frames at {frames.fps:g} fps" if frames.is_video else "image"
            notes = "".join(f"  \n_{n}_" for n in frames.notices)
            self.input_info.content = (f"**Input: uploaded {path.name}** ({width}x{height} {kind}); the Server path "
                                       f"field is not used until you clear the upload.{notes}")
            self.path.disabled = True
            self.clear_input.disabled = False
            self._update_backend()
            for notice in frames.notices:
                self.app.notify("Input downscaled", notice, client)

        self.app.start_job(f"Upload {uploaded.name[:60]}", accept, client)  # read in the background, with Cancel

    def _clear_input(self) -> None:
        self._input, self._input_is_video = None, False
        self.path.disabled = False
        self.clear_input.disabled = True
        self.input_info.content = "_Input: the Server path field._"
        self._update_backend()

    def _on_depth_upload(self, client_id: int, uploaded: viser.UploadedFile) -> None:
        from lyra.pipeline.depth import read_depth_file

        client = self.app.server.get_clients().get(client_id)

        def accept(job):
            if Path(uploaded.name).suffix.lower() not in (".exr", ".png", ".npy"):
                raise InputDataError(f"depth: {uploaded.name}: expected a depth file ending in .exr, .png or .npy")
            path = self._save_upload(uploaded, "depth")
            job(0.1, f"reading {path.name}")
            depth = read_depth_file(path, png_units_per_metre=float(self.png_units.value))  # refuse a bad file now
            job(0.9, "checked")  # a Cancel while reading stops here, before anything changes
            valid = depth.depth[depth.valid]
            height, width = depth.depth.shape
            span = f"{float(valid.min()):.3g} to {float(valid.max()):.3g} m" if valid.numel() else "no valid pixels"
            self._depth = path
            self.depth_path.disabled = True
            self.clear_depth.disabled = False
            self.depth_info.content = (f"**Depth: uploaded {path.name}** ({width}x{height}, {span}); the Depth server "
                                       "path field is not used until you clear the upload.")
            self.app.notify("Depth uploaded", f"{path.name}: {width}x{height}, {span}", client)

        self.app.start_job(f"Upload {uploaded.name[:60]}", accept, client)  # read in the background, with Cancel

    def _clear_depth(self) -> None:
        self._depth = None
        self.depth_path.disabled = False
        self.clear_depth.disabled = True
        self.depth_info.content = "_Depth: the Depth server path field, else the depth model._"

    def _update_camera(self) -> None:
        mode = self.camera.value
        self.fov.disabled = mode != "field of view"
        for widget in (self.fx, self.fy, self.cx, self.cy):
            widget.disabled = mode != "intrinsics"

    # ------------------------------------------------------------ models
    def _missing(self, backend: str, teacher: str) -> list[dict]:
        from lyra.pipeline.generate_models import missing_models

        key = (backend, teacher, self._input_is_video)
        if key not in self._missing_cache:
            self._missing_cache[key] = missing_models(backend, dynamic=self._input_is_video, teacher=teacher)
        return self._missing_cache[key]

    def _depth_hint(self) -> str | None:
        from lyra.pipeline.preview import depth_model_hint

        if "depth" not in self._missing_cache:
            self._missing_cache["depth"] = depth_model_hint()
        return self._missing_cache["depth"]

    def _update_backend(self) -> None:
        from lyra.pipeline.generate_models import MEMORY_MODE_HELP

        backend, teacher = BACKEND_LABELS[self.backend.value], TEACHER_LABELS[self.teacher.value]
        missing = self._missing(backend, teacher)
        for name in ("teacher", "custom_path", "use_render_path", "movement", "size", "num_frames"):
            getattr(self, name).disabled = backend == "lift"
        for name in ("steps", "guidance", "memory"):
            getattr(self, name).disabled = backend == "lift" or teacher == "lift"
        for box in self.trajectories.values():
            box.disabled = backend == "lift"
        if missing:
            rows = "\n".join(f"- **{row['name']}**: `{row['hint']}`" for row in missing)
            gpu = (f"\n\nThe GEN3C teacher also needs a large CUDA GPU; memory modes: {MEMORY_MODE_HELP}."
                   if teacher == "gen3c" else "")
            self.models.content = (f"The {backend} backend is blocked; missing models (`lyra models check`):\n{rows}"
                                   f"{gpu}")
        elif backend == "lift":
            hint = self._depth_hint()
            self.models.content = ("_Lift: depth from the depth file, or the registry's depth model._" if hint is None else
                                   f"_Lift: no depth model here, so upload a depth file with the image, or get one:_ `{hint}`")
        elif teacher == "gen3c":
            self.models.content = f"_All models are here. GEN3C needs a large CUDA GPU; memory modes: {MEMORY_MODE_HELP}._"
        else:
            self.models.content = "_All models are here; the lift teacher runs on the CPU (holes show as white)._"
        self.generate_button.disabled = bool(missing)
        self.generate_button.label = f"Generate (blocked: {len(missing)} models missing)" if missing else "Generate"

    def refresh(self) -> None:
        pass  # the panel mirrors no scene state

    def stop(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # ------------------------------------------------------------ the request
    def build_request(self) -> GenerateRequest:
        """The request the widgets describe, read now (the job must not read widgets later)."""
        # Server paths are confined like Open path (viewer.open_path): the folders the server was told about.
        confine = self.app.paths.check
        if self._input is not None:
            source = self._input
        elif self.path.value.strip():
            source = confine(self.path.value)
        else:
            raise InputDataError("input: upload an image or a video, or give a server path")
        if self._depth is not None:
            depth = self._depth
        else:
            depth = confine(self.depth_path.value) if self.depth_path.value.strip() else None
        custom_raw = self.custom_path.value.strip() or (self.app.keyframed_path if self.use_render_path.value else "")
        if self.use_render_path.value and not custom_raw:
            raise InputDataError("custom_path: the Render panel has no keyframed path: give its camera-path JSON there first")
        if custom_raw:
            read_camera_path(self.app.paths, custom_raw)  # refused here (FIFO, outside, not a path) before any job
        mode = self.camera.value
        return GenerateRequest(
            input=str(source), depth=str(depth) if depth else None, depth_units=float(self.png_units.value),
            intrinsics=[float(w.value) for w in (self.fx, self.fy, self.cx, self.cy)] if mode == "intrinsics" else None,
            fov=float(self.fov.value) if mode == "field of view" else None,
            backend=BACKEND_LABELS[self.backend.value], teacher=TEACHER_LABELS[self.teacher.value],
            trajectories=[name for name, box in self.trajectories.items() if box.value],
            custom_path=str(confine(custom_raw)) if custom_raw else None,
            movement=float(self.movement.value), steps=int(self.steps.value), guidance=float(self.guidance.value),
            seed=int(self.seed.value), times=self.times.value, size=self.size.value,
            num_frames=int(self.num_frames.value), memory=self.memory.value, device=self.device.value,
            work_dir=str(self.app.output_dir / "generate" / (Path(source).stem + ".work")),
        )

    def show_request(self, request: GenerateRequest) -> None:
        """Set the widgets to ``request`` (a loaded request file); paths go to the server path fields."""
        if self._input is not None:
            self._clear_input()
        if self._depth is not None:
            self._clear_depth()
        self.path.value = request.input
        self.depth_path.value = request.depth or ""
        self.png_units.value = request.depth_units
        self.camera.value = "intrinsics" if request.intrinsics else "field of view" if request.fov else "auto"
        if request.intrinsics:
            for widget, value in zip((self.fx, self.fy, self.cx, self.cy), request.intrinsics, strict=True):
                widget.value = value
        if request.fov:
            self.fov.value = request.fov
        self.backend.value = _label(BACKEND_LABELS, request.backend)
        self.teacher.value = _label(TEACHER_LABELS, request.teacher)
        for name, box in self.trajectories.items():
            box.value = name in request.trajectories
        self.custom_path.value = request.custom_path or ""
        self.use_render_path.value = False
        self.movement.value, self.steps.value, self.guidance.value = request.movement, request.steps, request.guidance
        self.seed.value, self.num_frames.value = request.seed, request.num_frames
        self.times.value = ",".join(str(t) for t in request.times) if request.times else ""
        self.size.value = f"{request.width}x{request.height}"
        self.memory.value, self.device.value = request.memory, request.device
        self._update_camera()
        self._update_backend()

    def _request_path(self) -> Path:
        return resolve_inside(self.app.output_dir, self.request_file.value.strip() or "generate-request.yaml")

    def _on_save_request(self, event) -> None:
        def save():
            path = self._request_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.build_request().to_yaml(path)
            kept = ("; its input is an upload, kept only while this viewer runs: give a server path to re-run it "
                    "later") if self._input is not None or self._depth is not None else ""
            self.app.notify("Request saved", f"{path} ({path.stat().st_size} bytes){kept}", event.client)

        self.app.action("Save request", save, event.client)

    def _on_load_request(self, event) -> None:
        def load():
            raw = self.request_file.value.strip()
            inside = self._request_path() if raw and not Path(raw).is_absolute() else None
            path = inside if inside is not None and inside.is_file() else self.app.paths.check(raw)
            request = GenerateRequest.from_yaml(Path(path))
            self.app.paths.check(request.input)  # a loaded request reads only what the viewer serves
            self.show_request(request)
            self.app.notify("Request loaded", str(path), event.client)

        self.app.action("Load request", load, event.client)

    # ------------------------------------------------------------ run
    def _on_generate(self, event) -> None:
        from lyra.pipeline import request as front_door

        app = self.app
        request = app.action("Generate", self.build_request, event.client)
        if request is None:
            return
        name = f"generated-{Path(request.input).stem or 'scene'}"

        def run(job):
            return front_door.run(request, job)

        def done(job):
            app.action("Open the result", lambda: self._show(job.result, name, request.input), event.client)

        app.start_job(f"Generate ({request.backend})", run, event.client, on_done=done)

    def _show(self, scene, name: str, source: str) -> None:
        from lyra.scene import GaussianSequence

        layer = self.app.add_scene_layer(scene, name, source=source)
        framing = frame_scene(scene)
        for client in self.app.server.get_clients().values():
            self.app.place_camera(client, framing)
        splats = self.app.state.layer_info(layer).splats
        timing = f", {len(scene)} frames at {scene.fps:g} fps" if isinstance(scene, GaussianSequence) else ""
        self.app.notify("Generated", f"{layer}: {splats:,} splats{timing}")

"""Generate panel: an image (or a video) in, a new scene layer (or 4D sequence) out.

Input: a browser upload or a server path (image, video, or ViPE-style folder),
and an optional depth file (upload or path). Options mirror ``lyra generate``:
backend (lift: seconds on any machine; lyra: GEN3C + the Lyra decoder),
trajectory checkboxes plus a custom camera-path JSON (the Render panel's
format), movement, steps, guidance, seed, device, memory mode, and target
times for 4D. Models the lyra backend needs but this machine lacks are listed
with what to get (``lyra models check``); while any is missing that backend is
blocked, and the Generate button says why.

A run is a background job (its own row, progress and Cancel); the result is
added as a new layer with the camera framed on it. A bad input is a
notification; nothing already open changes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import viser

from lyra.errors import InputDataError
from lyra.render.framing import frame_scene
from lyra.render.trajectories import LYRA_TRAJECTORY_INDEX
from viewer.uploads import save_upload_into

BACKENDS = {"lift (fast preview)": "lift", "lyra (GEN3C + decoder)": "lyra"}
TRAJECTORIES = (*LYRA_TRAJECTORY_INDEX, "down", "counterclockwise")
MEMORY_MODES = ("none", "model", "group", "model+fp8", "group+fp8")  # the teacher's memory modes (README)


class GeneratePanel:
    key = "generate"

    def __init__(self, app):
        self.app = app
        gui = app.server.gui
        self._scratch = Path(tempfile.mkdtemp(prefix="lyra-generate-"))
        self._input: Path | None = None  # an uploaded input, kept until replaced
        self._depth: Path | None = None  # an uploaded depth file
        with gui.add_folder("Input"):
            self.upload = gui.add_upload_button("Upload image or video", icon=viser.Icon.PHOTO,
                                                hint="PNG/JPEG/WebP image, or an MP4/MOV/WebM video for 4D")
            self.path = gui.add_text("Server path", "", hint="An image, a video or a ViPE-style folder on the server "
                                     "(used when nothing is uploaded)")
            self.depth_upload = gui.add_upload_button("Upload depth (optional)", icon=viser.Icon.UPLOAD,
                                                      hint="z-depth in metres: EXR, NPY, or 16-bit PNG")
            self.depth_path = gui.add_text("Depth server path", "", hint="Used when no depth is uploaded")
            self.png_units = gui.add_number("16-bit PNG units per metre", 1000.0, min=1e-6,
                                            hint="1000: millimetres (Kinect, ScanNet); 5000: TUM RGB-D")
            self.fov = gui.add_slider("Field of view (deg)", 20, 120, 1, 60,
                                      hint="Horizontal; used when neither the depth model nor the input gives one")
            self.input_info = gui.add_markdown("_No input yet._")
        with gui.add_folder("Options"):
            self.backend = gui.add_dropdown("Backend", list(BACKENDS), initial_value=next(iter(BACKENDS)))
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
            self.device = gui.add_dropdown("Device", ["auto", "cpu", "cuda"], initial_value="auto")
            self.memory = gui.add_dropdown("Memory mode", list(MEMORY_MODES), initial_value="none",
                                           hint="none: all on the GPU; model / group: CPU offload (whole models / block groups); +fp8: fp8 weight storage")
            self.times = gui.add_text("4D target times", "0:121:4", hint="Frame indices start:stop:step or a,b,c "
                                      "(lift: frames of the video to lift; lyra: times the dynamic decoder is queried at)")
        self.generate_button = gui.add_button("Generate", icon=viser.Icon.SPARKLES)
        # size-checked while arriving, one value per upload (viewer.security.UploadLimiter)
        app.uploads.on_upload(self.upload, self._on_upload)
        app.uploads.on_upload(self.depth_upload, self._on_depth_upload)
        self.backend.on_update(lambda _: self._update_backend())
        self.generate_button.on_click(self._on_generate)
        self._missing_cache: dict[object, object] = {}  # (backend, dynamic) -> missing rows; "depth" -> hint or None
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

        def accept():
            path = self._save_upload(uploaded, "input")
            frames = read_input(path)  # refuse a non-image or a 1-frame video now, not after a wait
            self._input, self._input_is_video = path, frames.is_video
            self._update_backend()
            height, width = frames.size
            kind = f"video, {frames.frames.shape[0]} frames" if frames.is_video else "image"
            notes = "".join(f"  \n_{n}_" for n in frames.notices)
            self.input_info.content = f"**{path.name}**: {width}x{height} {kind}{notes}"
            for notice in frames.notices:
                self.app.notify("Input downscaled", notice, client)

        self.app.action(f"Upload {uploaded.name}", accept, client)

    def _on_depth_upload(self, client_id: int, uploaded: viser.UploadedFile) -> None:
        client = self.app.server.get_clients().get(client_id)

        def accept():
            if Path(uploaded.name).suffix.lower() not in (".exr", ".png", ".npy"):
                raise InputDataError(f"{uploaded.name}: expected a depth file ending in .exr, .png or .npy")
            self._depth = self._save_upload(uploaded, "depth")

        self.app.action(f"Upload {uploaded.name}", accept, client)

    # ------------------------------------------------------------ models
    def _missing(self, backend: str) -> list[dict]:
        from lyra.pipeline.generate_models import missing_models

        key = (backend, self._input_is_video)
        if key not in self._missing_cache:
            self._missing_cache[key] = missing_models(backend, dynamic=self._input_is_video)
        return self._missing_cache[key]

    def _depth_hint(self) -> str | None:
        from lyra.pipeline.preview import depth_model_hint

        if "depth" not in self._missing_cache:
            self._missing_cache["depth"] = depth_model_hint()
        return self._missing_cache["depth"]

    def _update_backend(self) -> None:
        backend = BACKENDS[self.backend.value]
        missing = self._missing(backend)
        for name in ("custom_path", "use_render_path", "movement", "steps", "guidance", "memory"):
            getattr(self, name).disabled = backend == "lift"
        for box in self.trajectories.values():
            box.disabled = backend == "lift"
        if missing:
            rows = "\n".join(f"- **{row['name']}**: `{row['hint']}`" for row in missing)
            self.models.content = f"The {backend} backend is blocked; missing models (`lyra models check`):\n{rows}"
        elif backend == "lift":
            hint = self._depth_hint()
            self.models.content = ("_Lift: depth from the uploaded file, or the registry's depth model._" if hint is None else
                                   f"_Lift: no depth model here, so upload a depth file with the image, or get one:_ `{hint}`")
        else:
            self.models.content = "_All models the lyra backend needs are here._"
        self.generate_button.disabled = bool(missing)
        self.generate_button.label = f"Generate (blocked: {len(missing)} models missing)" if missing else "Generate"

    def refresh(self) -> None:
        pass  # the panel mirrors no scene state

    def stop(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # ------------------------------------------------------------ run
    def _request(self) -> dict:
        """Everything a run needs, read from the widgets now (the job must not read widgets later)."""
        from lyra.cli.decode import parse_times

        # Server paths are confined like Open path (viewer.open_path): the folders the server was told about.
        confine = self.app.paths.check
        source = self._input or (confine(self.path.value) if self.path.value.strip() else None)
        if source is None:
            raise InputDataError("upload an image or a video, or give a server path")
        depth = self._depth or (confine(self.depth_path.value) if self.depth_path.value.strip() else None)
        backend = BACKENDS[self.backend.value]
        names = [name for name, box in self.trajectories.items() if box.value]
        custom_raw = self.custom_path.value.strip() or (self.app.keyframed_path if self.use_render_path.value else "")
        if self.use_render_path.value and not custom_raw:
            raise InputDataError("the Render panel has no keyframed path: give its camera-path JSON there first")
        custom = str(confine(custom_raw)) if custom_raw else None
        if custom:
            names.append("custom")
        if backend == "lyra" and not names:
            raise InputDataError("tick at least one trajectory")
        times = parse_times(self.times.value) if self.times.value.strip() else None
        return dict(source=source, depth=depth, backend=backend, trajectories=names, custom=custom, times=times,
                    movement=float(self.movement.value), steps=int(self.steps.value), guidance=float(self.guidance.value),
                    seed=int(self.seed.value), device=self.device.value, memory=self.memory.value,
                    png_units=float(self.png_units.value), fov=float(self.fov.value))

    def _on_generate(self, event) -> None:
        app = self.app
        request = app.action("Generate", self._request, event.client)
        if request is None:
            return
        name = f"generated-{request['source'].stem or 'scene'}"

        def run(job):
            return generate(request, app.output_dir, job)

        def done(job):
            app.action("Open the result", lambda: self._show(job.result, name, str(request["source"])), event.client)

        app.start_job(f"Generate ({request['backend']})", run, event.client, on_done=done)

    def _show(self, scene, name: str, source: str) -> None:
        layer = self.app.add_scene_layer(scene, name, source=source)
        framing = frame_scene(scene)
        for client in self.app.server.get_clients().values():
            self.app.place_camera(client, framing)
        self.app.notify("Generated", f"{layer}: {self.app.state.layer_info(layer).splats:,} splats")


def generate(request: dict, output_dir: Path, progress) -> object:
    """Run one Generate request (the job's body): the lift or the Lyra pipeline, returning the scene."""
    import torch

    from lyra.cli.decode import resolve_device
    from lyra.pipeline.depth import default_intrinsics
    from lyra.pipeline.inputs import read_input
    from lyra.pipeline.preview import default_depth_estimator, lift_frames

    frames = read_input(request["source"])
    progress(0.0, "input read")
    device = resolve_device(request["device"])
    intrinsics = None
    if frames.intrinsics is None:
        height, width = frames.size
        intrinsics = default_intrinsics(width, height, request["fov"]).tolist()
    estimator = None
    if request["depth"] is None and frames.depth is None:
        estimator = default_depth_estimator(device)
        intrinsics = None  # the depth model's own field of view beats the slider's guess
    if request["backend"] == "lift":
        indices = request["times"] if frames.is_video else None
        if indices is not None:
            indices = [i for i in indices if i < frames.frames.shape[0]] or [0]
        with torch.inference_mode():
            return lift_frames(frames, frame_indices=indices, depth_file=request["depth"], estimator=estimator,
                               intrinsics=intrinsics, png_units_per_metre=request["png_units"], progress=progress)
    from lyra.pipeline.generate import GenerateSettings, generate_scene

    settings = GenerateSettings(
        trajectories=request["trajectories"], movement=request["movement"], steps=request["steps"],
        guidance=request["guidance"], seed=request["seed"], target_times=request["times"],
        offload=request["memory"], device=str(device), custom_path=request["custom"],
    )
    work_dir = output_dir / "generate" / (Path(request["source"]).stem + ".work")
    return generate_scene(frames, settings, work_dir=work_dir, depth_file=request["depth"], estimator=estimator,
                          intrinsics=intrinsics, png_units_per_metre=request["png_units"], progress=progress)

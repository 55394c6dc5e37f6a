"""The front door: GenerateRequest validation (errors name fields), its YAML round trip, parse_times, the device
rule, and ``lyra generate``'s flags, ``--save-request`` and ``--request`` giving the same request and scene."""

import dataclasses

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.cli import build_parser, main
from lyra.device import resolve_device
from lyra.errors import ConfigError, LyraError
from lyra.pipeline.request import GenerateRequest, RequestError, parse_times, run
from lyra.scene import load


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    iio.imwrite(tmp_path / "photo.png", rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    depth = np.full((24, 32), 2.0, np.float32)
    depth[:, 16:] = 3.0
    np.save(tmp_path / "depth.npy", depth)
    return tmp_path / "photo.png", tmp_path / "depth.npy"


def every_field_changed(tmp_path) -> GenerateRequest:
    from lyra.render import CameraPath, Keyframe

    CameraPath([Keyframe(position=(0.0, 0.0, 0.0), look_at=(0.0, 0.0, 1.0)),
                Keyframe(position=(0.3, 0.0, 0.0), look_at=(0.3, 0.0, 1.0))]).save(tmp_path / "path.json")
    return GenerateRequest(
        input=str(tmp_path / "clip.mp4"), output=str(tmp_path / "out"), backend="lyra", teacher="lift",
        depth=str(tmp_path / "d.png"), depth_units=5000.0, depth_model="apple/DepthPro-hf",
        intrinsics=[500.0, 510.0, 320.5, 240.25], trajectories=["zoom_in", "left"],
        custom_path=str(tmp_path / "path.json"), movement=1.5, steps=12, guidance=3.5, seed=7, times="0:49:8",
        size="640x352", num_frames=57, memory="group+fp8", device="cpu", prune_ratio=0.5, dynamic=True,
        work_dir=str(tmp_path / "work"), pixels_per_splat=2,
    )


def test_yaml_round_trip_keeps_every_field(tmp_path):
    request = every_field_changed(tmp_path)
    assert request.trajectories == ["zoom_in", "left", "custom"]  # the camera path is one more trajectory
    assert request.times == [0, 8, 16, 24, 32, 40, 48] and request.size == (640, 352)
    text = request.to_yaml()
    assert GenerateRequest.from_yaml(text) == request
    request.to_yaml(tmp_path / "r.yaml")
    assert GenerateRequest.from_yaml(tmp_path / "r.yaml") == request  # a path object
    assert GenerateRequest.from_yaml(str(tmp_path / "r.yaml")) == request  # a path string naming a .yaml file
    defaults = GenerateRequest(input="photo.png")
    assert GenerateRequest.from_yaml(defaults.to_yaml()) == defaults
    assert {f.name for f in dataclasses.fields(GenerateRequest)} <= set(request.to_dict())


@pytest.mark.parametrize(("values", "field"), [
    ({"backend": "magic"}, "backend"),
    ({"trajectories": "left,sideways"}, "trajectories"),
    ({"trajectories": ["custom"]}, "custom_path"),
    ({"intrinsics": "1,2,3"}, "intrinsics"),
    ({"intrinsics": [0, 1, 2, 3]}, "intrinsics"),
    ({"intrinsics": "500,500,16,12", "fov": 41}, "fov"),
    ({"fov": 0.0}, "fov"),
    ({"times": "0:x"}, "times"),
    ({"size": "1000x704"}, "size"),
    ({"size": "big"}, "size"),
    ({"num_frames": 120}, "num_frames"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"movement": "far"}, "movement"),
    ({"memory": "tiny"}, "memory"),
    ({"device": "tpu"}, "device"),
    ({"depth_units": -1}, "depth_units"),
    ({"custom_path": "/no/such/path.json"}, "custom_path"),
    ({"dynamic": "yes"}, "dynamic"),
    ({"input": ""}, "input"),
    ({"pixels_per_splat": 0}, "pixels_per_splat"),
    ({"pixels_per_splat": 1.5}, "pixels_per_splat"),
])
def test_a_bad_value_is_an_error_naming_the_field_never_a_flag(values, field):
    fields = {"input": "photo.png", **values}
    with pytest.raises(RequestError) as caught:
        GenerateRequest(**fields)
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")
    assert "--" not in str(caught.value)


def test_bad_yaml_is_a_clear_error(tmp_path):
    with pytest.raises(RequestError, match="^colour: not a request field"):
        GenerateRequest.from_yaml("input: photo.png\ncolour: red\n")
    with pytest.raises(RequestError, match="^input: "):
        GenerateRequest.from_yaml("steps: 3\n")
    with pytest.raises(RequestError, match="^request: expected a mapping"):
        GenerateRequest.from_yaml("- a\n- b\n")
    with pytest.raises(RequestError, match="^request: expected YAML"):
        GenerateRequest.from_yaml("input: [unclosed\n")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\ninput: *b\n"
    with pytest.raises(RequestError, match="aliases"):
        GenerateRequest.from_yaml(bomb)
    with pytest.raises(RequestError, match="cannot read"):
        GenerateRequest.from_yaml(tmp_path / "missing.yaml")


def test_parse_times_is_the_one_parser():
    assert parse_times(None) is None and parse_times("all") is None and parse_times(" ") is None
    assert parse_times("0,60,120") == [0, 60, 120]
    assert parse_times("0:121:60") == [0, 60, 120]
    assert parse_times([3, 5]) == [3, 5]
    for bad in ("0:x", "1:2:0", "-3", "0:10:2:1"):
        with pytest.raises(RequestError, match="^times: "):
            parse_times(bad)


def test_the_device_rule():
    assert resolve_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():
        assert resolve_device("auto").type == "cuda"
    else:
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="^device: expected a CUDA GPU"):
            resolve_device("cuda")  # an explicit cuda without CUDA is an error, never a silent CPU run
    with pytest.raises(ConfigError, match="^device: "):
        resolve_device("tpu")


def test_flags_save_request_and_request_give_one_request_and_one_scene(photo, tmp_path, capsys):
    image, depth = photo
    flags = ["generate", str(image), "--depth", str(depth), "--fov", "41", "--out", str(tmp_path / "cli.ply"),
             "--quiet", "--save-request", str(tmp_path / "saved.yaml")]
    assert main(flags) == 0
    from lyra.cli.generate import request_from_args

    from_flags = request_from_args(build_parser("generate").parse_args(flags))
    api = GenerateRequest(input=str(image), depth=str(depth), fov=41, output=str(tmp_path / "cli.ply"))
    assert from_flags == api == GenerateRequest.from_yaml(tmp_path / "saved.yaml")
    # The saved request re-runs the same job; a flag given with it overrides that one field.
    assert main(["generate", "--request", str(tmp_path / "saved.yaml"), "--out", str(tmp_path / "again.ply"),
                 "--quiet"]) == 0
    first, again = load(tmp_path / "cli.ply"), load(tmp_path / "again.ply")
    assert torch.equal(first.means, again.means) and torch.equal(first.sh, again.sh)
    scene = run(api)
    assert torch.equal(scene.means, first.means)
    assert len(first) == 24 * 32
    # fov 41 for a 32-pixel-wide image: fx = 16 / tan(20.5 deg); the right half is 3 m away.
    fx = 16 / np.tan(np.radians(20.5))
    right = first.means[first.means[:, 2] > 2.5]
    assert right[:, 0].max().item() == pytest.approx((31.5 - 16) * 3.0 / fx, rel=1e-4)
    capsys.readouterr()


def test_cli_errors_name_request_fields(photo, tmp_path, capsys):
    image, depth = photo
    assert main(["generate", str(image), "--depth", str(depth), "--size", "100x100", "--out", str(tmp_path / "o.ply"),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "lyra generate: error: size: expected multiples of 16" in err
    assert main(["generate", "--out", str(tmp_path / "o.ply")]) == 1
    assert "input: give an image" in capsys.readouterr().err
    (tmp_path / "r.yaml").write_text("input: x.png\nsteps: many\n")
    assert main(["generate", "--request", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "o.ply")]) == 1
    assert "steps: expected an integer" in capsys.readouterr().err


def test_run_checks_cancel_and_says_what_it_assumed(photo):
    import threading

    from lyra.progress import Cancelled

    image, depth = photo
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        run(GenerateRequest(input=str(image), depth=str(depth)), cancel=stop)
    notes = []
    run(GenerateRequest(input=str(image), depth=str(depth)), notify=notes.append)
    assert any("60 degree" in n for n in notes)
    with pytest.raises(LyraError, match="^dynamic: "):
        run(GenerateRequest(input=str(image), depth=str(depth), dynamic=True))


def test_resume_keys_know_which_decoder_and_teacher_files_a_run_would_load(tmp_path, monkeypatch):
    """Issue 20 section 3.5, for models from the registry: identities come from their files, without loading them."""
    import os

    from lyra.pipeline.generate_models import decoder_identity, teacher_identity

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(f"kind: static  # {name}\n")
    (tmp_path / "gen3c.pt").write_bytes(b"weights")

    def use(decoder_folder):
        registry = tmp_path / "models.yaml"
        registry.write_text(f"decoder_static:\n  path: {tmp_path / decoder_folder}\n  file: config.yaml\n"
                            f"gen3c:\n  path: {tmp_path / 'gen3c.pt'}\n")
        monkeypatch.setenv("LYRA_MODELS", str(registry))

    request = GenerateRequest(input="photo.png", backend="lyra")
    use("a")
    first = decoder_identity(request, dynamic=False)
    assert first == decoder_identity(request, dynamic=False)  # stable
    use("b")
    assert decoder_identity(request, dynamic=False) != first  # another checkpoint
    use("a")
    stat = os.stat(tmp_path / "a" / "config.yaml")
    os.utime(tmp_path / "a" / "config.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert decoder_identity(request, dynamic=False) != first  # the same path, rewritten
    gen3c = teacher_identity(request)
    assert gen3c["class"] == "Gen3CTeacher" and gen3c["weights"]["size"] == len(b"weights")
    assert teacher_identity(GenerateRequest(input="photo.png", backend="lyra", teacher="lift"))["class"] == "LiftTeacher"
    (tmp_path / "gen3c.pt").write_bytes(b"other weights")
    assert teacher_identity(request) != gen3c


def test_pixels_per_splat_keeps_the_full_resolution_lift_for_server_renders(photo):
    """Issue 21.1: the live view gets a coarser lift of large photos; pixels_per_splat=1 keeps every pixel."""
    from lyra.pipeline.request import run

    image, depth = photo
    full = run(GenerateRequest(input=str(image), depth=str(depth), fov=60.0, pixels_per_splat=1))
    blocks = run(GenerateRequest(input=str(image), depth=str(depth), fov=60.0, pixels_per_splat=2))
    assert len(full) == 24 * 32 and len(blocks) == 12 * 16


def test_the_input_stage_key_knows_the_depth_models_weights():
    """Issue 20 §3.5: every input's identity in the resume key, the depth network's weights included."""
    import torch

    from lyra.pipeline.depth import DepthEstimator
    from lyra.pipeline.generate import input_key
    from lyra.pipeline.inputs import Frames

    frames = Frames(torch.zeros(1, 16, 16, 3, dtype=torch.uint8))
    request = GenerateRequest(input="photo.png")
    torch.manual_seed(0)
    one, other = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    key = input_key(frames, request, DepthEstimator(one, None, "depth_pro"), None)
    assert key == input_key(frames, request, DepthEstimator(one, None, "depth_pro"), None)
    assert key != input_key(frames, request, DepthEstimator(other, None, "depth_pro"), None)
    assert key != input_key(frames, request, DepthEstimator(one, None, "depth_anything"), None)
    assert key != input_key(frames, request, None, None)

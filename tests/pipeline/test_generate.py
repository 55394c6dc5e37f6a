"""The Lyra pipeline end to end with tiny models: stages, the SDG folder, resume after a stage, 4D.

The teacher is :class:`lyra.teacher.lift.LiftTeacher` (the Teacher protocol without a video model),
here with a recorder of the trajectories it was asked for: it renders the lifted input along each
trajectory and encodes the video with the tiny Cosmos tokenizer, so the latents, cameras and frames
it hands the pipeline are consistent. Decoder and tokenizer are the tiny random models of
tests/conftest.py. Runs go through the front door, :func:`lyra.pipeline.request.run`.
"""

import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.errors import InputDataError
from lyra.model.checkpoint import load_decoder
from lyra.model.tokenizer import load_cosmos_tokenizer
from lyra.pipeline.decode import decode_scene
from lyra.pipeline.depth import default_intrinsics, make_depth_map
from lyra.pipeline.generate import fit_to_size, generate_scene, trajectory_cameras
from lyra.pipeline.inputs import Frames
from lyra.pipeline.lift import lift_image
from lyra.pipeline.request import GenerateRequest
from lyra.pipeline.request import run as run_request
from lyra.pipeline.sdg import read_trajectory
from lyra.progress import Cancelled
from lyra.scene import GaussianSequence
from lyra.teacher.lift import LiftTeacher

H, W, NUM_FRAMES = 32, 48, 9


class RecordingLiftTeacher(LiftTeacher):
    """The lift teacher recording the trajectory names it generated (tests only)."""

    def __init__(self, tokenizer):
        super().__init__(tokenizer, lift_image)
        self.calls: list[str] = []

    def generate(self, image, trajectories, *, names=None, **kwargs):
        self.calls += list(names)
        return super().generate(image, trajectories, names=names, **kwargs)

    def generate_video(self, frames, trajectories, *, names, **kwargs):
        self.calls += list(names)
        return super().generate_video(frames, trajectories, names=names, **kwargs)


class CountingDepth:
    """A depth "network" that says every pixel is 2 m away, and counts its calls."""

    kind = "test"

    def __init__(self):
        self.calls = 0

    def predict(self, image, *, intrinsics=None, progress=None):
        self.calls += 1
        height, width = image.shape[:2]
        return make_depth_map(torch.full((height, width), 2.0), default_intrinsics(width, height), "test")


@pytest.fixture(scope="module")
def models(vae_dir, static_checkpoint_dir):
    vae = load_cosmos_tokenizer(vae_dir)
    return vae, load_decoder(static_checkpoint_dir)


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (5, 8, 3)).astype(np.uint8)
    iio.imwrite(tmp_path / "photo.png", base.repeat(8, 0).repeat(8, 1))  # [40, 64, 3] blocky picture
    return tmp_path / "photo.png"


def settings(**overrides):
    values = dict(input="photo.png", backend="lyra", trajectories=["left", "right"], num_frames=NUM_FRAMES,
                  size=(W, H), prune_ratio=0.0)
    values.update(overrides)
    return GenerateRequest(**values)


def run(photo, models, work_dir, teacher=None, depth=None, progress=None, decoder=None, **overrides):
    vae, default_decoder = models
    request = settings(input=str(photo), work_dir=str(work_dir), **overrides)
    return run_request(request, progress, teacher=teacher or RecordingLiftTeacher(vae),
                       decoder=decoder or default_decoder, tokenizer=vae, estimator=depth or CountingDepth())


def test_image_to_gaussians_through_an_official_sdg_folder(photo, models, tmp_path):
    seen = []
    scene = run(photo, models, tmp_path / "work", progress=lambda f, t: seen.append((f, t)))
    # One Gaussian per 8x8 pixel block per frame per view (no pruning): 2 views x 9 frames x 4 x 6.
    assert len(scene) == 2 * NUM_FRAMES * (H // 8) * (W // 8)
    assert torch.isfinite(scene.means).all()
    # The SDG stage is the official layout, readable by `lyra decode`, and decoding it gives the same scene.
    trajectory = read_trajectory(tmp_path / "work" / "sdg" / "0", rgb=True, depth=True)
    assert trajectory.latents.shape == (16, 2, H // 8, W // 8)
    assert trajectory.frames.shape == (NUM_FRAMES, H, W, 3)
    assert trajectory.c2w[0].allclose(torch.eye(4), atol=1e-6)  # the first camera is the input view
    assert trajectory.c2w[-1, 0, 3] < -0.1  # "left" moves the camera along -x
    vae, decoder = models
    again = decode_scene(decoder, vae, tmp_path / "work" / "sdg", views=["0", "1"], name="scene", prune_ratio=0.0)
    assert torch.allclose(again.means, scene.means, atol=1e-5)
    # Staged progress: monotone, from depth through each trajectory to decoding, ending at 1.
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    texts = " | ".join(t for _, t in seen)
    for expected in ("depth", "trajectory 1/2 (left)", "trajectory 2/2 (right)", "decod"):
        assert expected in texts


@pytest.mark.slow
def test_a_cancelled_run_resumes_after_the_finished_stages(photo, models, tmp_path):
    vae, _ = models
    work = tmp_path / "work"
    teacher, depth = RecordingLiftTeacher(vae), CountingDepth()

    def cancel_in_second_trajectory(fraction, text):
        if "trajectory 2/2" in text:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        run(photo, models, work, teacher=teacher, depth=depth, progress=cancel_in_second_trajectory)
    assert teacher.calls == ["left", "right"] and depth.calls == 1
    assert (work / "sdg" / "0" / "stage.json").is_file()
    assert not (work / "sdg" / "1").exists()  # the interrupted trajectory left nothing half-written
    assert not (work / "scene").exists()

    resumed_teacher = RecordingLiftTeacher(vae)
    scene = run(photo, models, work, teacher=resumed_teacher, depth=depth)
    assert resumed_teacher.calls == ["right"]  # only the missing trajectory is generated
    assert depth.calls == 1  # depth was reused from disk
    fresh = run(photo, models, tmp_path / "fresh")
    assert torch.allclose(scene.means, fresh.means, atol=1e-5)  # same result as an uninterrupted run

    # A finished run reuses everything; another seed redraws the trajectory distances and regenerates.
    third = RecordingLiftTeacher(vae)
    run(photo, models, work, teacher=third, depth=depth)
    assert third.calls == []
    run(photo, models, work, teacher=third, depth=depth, seed=5)
    assert third.calls == ["left", "right"]
    assert json.loads((work / "sdg" / "0" / "stage.json").read_text())["trajectory"] == "left"


def test_input_is_centre_cropped_to_the_generation_aspect_with_intrinsics_following():
    image = torch.zeros(100, 100, 3, dtype=torch.uint8)
    image[:, 50:] = 255
    depth = torch.ones(100, 100)
    fitted, fitted_depth, k = fit_to_size(image, depth, torch.tensor([80.0, 80.0, 50.0, 50.0]), 64, 32)
    assert fitted.shape == (32, 64, 3) and fitted_depth.shape == (32, 64)
    # 100x50 crop (rows 25..74) scaled by 0.64: fx 51.2, principal point stays centred.
    assert k.tolist() == pytest.approx([51.2, 51.2, 32.0, 16.0])
    assert fitted[:, 31].max() == 0 and fitted[:, 33].min() == 255


def test_4d_trajectories_follow_each_input_frame_and_the_dynamic_decoder_gives_a_sequence(
    vae_dir, dynamic_checkpoint_dir, tmp_path
):
    vae = load_cosmos_tokenizer(vae_dir)
    decoder = load_decoder(dynamic_checkpoint_dir)
    rng = np.random.default_rng(0)
    video = torch.from_numpy(rng.integers(0, 256, (NUM_FRAMES, H, W, 3), dtype=np.uint8))
    poses = torch.eye(4).repeat(NUM_FRAMES, 1, 1)
    poses[:, 0, 3] = torch.linspace(0.0, 0.4, NUM_FRAMES)  # the video's camera pans right
    # An 8 fps clip: the sequence is timed at the clip's rate, not the decoder's nominal 24 fps.
    frames = Frames(video, 8.0, torch.full((NUM_FRAMES, H, W), 3.0), poses, torch.tensor([[40.0, 40.0, 24.0, 16.0]] * NUM_FRAMES))
    teacher = RecordingLiftTeacher(vae)
    result = generate_scene(
        frames, settings(trajectories=["left"], times=[0, 4, 8]), work_dir=tmp_path / "work",
        teacher=teacher, decoder=decoder, tokenizer=vae,
    )
    assert isinstance(result, GaussianSequence) and len(result) == 3
    assert result.fps == 8.0 and result.times == pytest.approx([0.0, 4 / 8, 8 / 8])
    written = read_trajectory(tmp_path / "work" / "sdg" / "0")
    preset = trajectory_cameras("left", settings(), torch.tensor([40.0, 40.0, 24.0, 16.0]), center_depth=3.0)
    # Frame i of the trajectory = the preset's camera i placed relative to input frame i's camera.
    assert torch.allclose(written.c2w, poses @ preset.c2w, atol=1e-5)
    assert teacher.calls == ["left"]


def test_custom_camera_path_starts_at_the_input_view_with_the_input_intrinsics(tmp_path):
    from lyra.render import CameraPath, Keyframe

    path = CameraPath([Keyframe(position=(1.0, 0.0, 0.0), look_at=(1.0, 0.0, 5.0)),
                       Keyframe(position=(1.5, 0.0, 0.0), look_at=(1.5, 0.0, 5.0))])
    path.save(tmp_path / "path.json")
    k = torch.tensor([40.0, 40.0, 24.0, 16.0])
    camera = trajectory_cameras("custom", settings(trajectories=["custom"], custom_path=str(tmp_path / "path.json"),
                                                   movement=2.0), k)
    assert camera.batch_shape == (NUM_FRAMES,)
    assert torch.allclose(camera.c2w[0], torch.eye(4), atol=1e-5)  # relative to its first keyframe
    assert camera.c2w[-1, 0, 3].item() == pytest.approx(1.0, abs=1e-4)  # 0.5 along x, times movement 2
    assert torch.equal(camera.intrinsics, k.expand(NUM_FRAMES, 4))
    with pytest.raises(InputDataError, match="custom_path: .*not found"):
        settings(trajectories=["custom"], custom_path=str(tmp_path / "missing.json"))


@pytest.mark.slow
def test_another_decoder_or_teacher_is_never_reused(photo, models, tmp_path, vae_dir, make_tiny_decoder):
    """Issue 20 section 3.5: the decode key holds the decoder's identity, the teacher key the teacher's."""
    vae, decoder = models
    work = tmp_path / "work"
    seen = []
    first = run(photo, models, work)
    other = make_tiny_decoder("static", seed=7)
    second = run(photo, models, work, decoder=other, progress=lambda f, t: seen.append(t))
    assert not any("decode: reused" in t for t in seen)  # another decoder decodes again
    assert not torch.allclose(first.means, second.means)
    assert torch.equal(second.means, decode_scene(other, vae, work / "sdg", views=["0", "1"], name="scene",
                                                  prune_ratio=0.0).means)
    seen.clear()
    run(photo, models, work, decoder=other, progress=lambda f, t: seen.append(t))
    assert any("decode: reused" in t for t in seen)  # the same decoder again: reused
    # A teacher with other weights (another tokenizer) makes the trajectories again.
    other_vae = load_cosmos_tokenizer(vae_dir)
    with torch.no_grad():
        next(other_vae.parameters()).add_(0.5)
    again = RecordingLiftTeacher(other_vae)
    run(photo, models, work, teacher=again, decoder=other)
    assert again.calls == ["left", "right"]

"""``lyra generate``: the lift backend end to end, videos to 4D previews, and the bad inputs a user makes."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from lyra.cli import main
from lyra.pipeline.inputs import MAX_PIXELS, read_input
from lyra.scene import GaussianSequence, load


@pytest.fixture
def image_and_depth(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    depth = np.full((24, 32), 2.0, np.float32)
    depth[0, :5] = np.nan  # five pixels without depth
    iio.imwrite(tmp_path / "photo.png", image)
    np.save(tmp_path / "depth.npy", depth)
    return tmp_path / "photo.png", tmp_path / "depth.npy", image


def write_video(path, frames: int, size=(32, 48)):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    iio.imwrite(path, data, fps=12, codec="libx264", macro_block_size=1)
    return data


def test_image_with_a_depth_file_becomes_a_ply_with_one_splat_per_pixel(image_and_depth, tmp_path, capsys):
    photo, depth, image = image_and_depth
    out = tmp_path / "scene.ply"
    code = main(["generate", str(photo), "--depth", str(depth), "--intrinsics", "40,40,16,12", "--out", str(out), "--quiet"])
    assert code == 0
    scene = load(out)
    assert len(scene) == 24 * 32 - 5
    assert torch.allclose(scene.means[:, 2], torch.full((len(scene),), 2.0))
    # Colours survive the PLY round trip: the first splat is pixel (row 0, col 5).
    assert torch.allclose(scene.rgb()[0], torch.tensor(image[0, 5] / 255.0, dtype=torch.float32), atol=1e-5)
    assert "763 splats" in capsys.readouterr().out


def test_png16_depth_with_a_scale(tmp_path, image_and_depth):
    photo, _, _ = image_and_depth
    iio.imwrite(tmp_path / "d.png", np.full((24, 32), 3000, np.uint16))
    out = tmp_path / "scene.ply"
    assert main(["generate", str(photo), "--depth", str(tmp_path / "d.png"), "--png-depth-scale", "1000",
                 "--out", str(out), "--quiet"]) == 0
    assert torch.allclose(load(out).means[:, 2], torch.full((768,), 3.0))


def test_video_becomes_a_4d_sequence_of_the_chosen_frames(tmp_path):
    write_video(tmp_path / "clip.mp4", 6)
    frames = read_input(tmp_path / "clip.mp4")
    assert frames.frames.shape == (6, 32, 48, 3) and frames.fps == pytest.approx(12.0)
    # A video with a ViPE folder's depth is the 4D path; here: depth for every frame from a tiny depth "model".

    class ConstantDepth:
        def predict(self, image, *, intrinsics=None, progress=None):
            from lyra.pipeline.depth import default_intrinsics, make_depth_map

            return make_depth_map(torch.full(image.shape[:2], 1.5), default_intrinsics(48, 32), "test")

    from lyra.pipeline.preview import lift_frames

    sequence = lift_frames(frames, frame_indices=[0, 2, 4], estimator=ConstantDepth())
    assert isinstance(sequence, GaussianSequence)
    assert len(sequence) == 3 and sequence.times == pytest.approx([0.0, 2 / 12, 4 / 12])
    assert all(len(f) == 32 * 48 for f in sequence.frames)


def make_vipe_folder(folder):
    from lyra.pipeline.sdg import write_depth_zip

    for sub in ("rgb", "depth", "pose", "intrinsics"):
        (folder / sub).mkdir(parents=True)
    write_video(folder / "rgb" / "clip.mp4", 3)
    write_depth_zip(folder / "depth" / "clip.zip", np.full((3, 32, 48), 2.0, np.float32))
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, 0, 3] = [5.0, 5.5, 6.0]  # the camera slides along x in ViPE's world
    np.savez(folder / "pose" / "clip.npz", data=poses, inds=np.arange(3))
    np.savez(folder / "intrinsics" / "clip.npz", data=np.tile([40.0, 40.0, 24.0, 16.0], (3, 1)), inds=np.arange(3))
    return folder


def test_vipe_folder_frames_are_lifted_with_their_poses(tmp_path):
    from lyra.pipeline.preview import lift_frames

    sequence = lift_frames(read_input(make_vipe_folder(tmp_path / "vipe")))
    assert len(sequence) == 3
    centres = [f.means.mean(0) for f in sequence.frames]
    # Poses are made relative to the first camera: frame 0 sits around x = 0, frame 2 one metre to the right.
    assert centres[0][0].item() == pytest.approx(0.0, abs=0.05)
    assert (centres[2] - centres[0]).tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-4)
    assert centres[0][2].item() == pytest.approx(2.0, abs=1e-4)


def test_cli_turns_a_vipe_folder_into_a_4d_sequence_folder(tmp_path, capsys):
    folder = make_vipe_folder(tmp_path / "vipe")
    assert main(["generate", str(folder), "--dynamic", "--times", "0:3:2", "--out", str(tmp_path / "clip"), "--quiet"]) == 0
    sequence = load(tmp_path / "clip")
    assert isinstance(sequence, GaussianSequence) and len(sequence) == 2  # frames 0 and 2
    assert all(len(frame) == 32 * 48 for frame in sequence.frames)
    assert "2 frames" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad inputs
def test_bad_inputs_get_one_clear_line_and_no_traceback(tmp_path, image_and_depth, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    photo, depth, _ = image_and_depth
    (tmp_path / "notes.txt").write_text("not a picture")
    write_video(tmp_path / "one.mp4", 1)
    write_video(tmp_path / "clip.mp4", 3)
    cases = {
        "notes.txt": ([str(tmp_path / "notes.txt"), "--depth", str(depth)], "expected an image"),
        "one.mp4": ([str(tmp_path / "one.mp4"), "--dynamic"], "at least 2 frames"),
        "no depth": ([str(photo)], "no depth"),
        "missing model": ([str(photo), "--depth-model", str(tmp_path / "no-model")], "apple/DepthPro-hf"),
        "bad trajectory": ([str(photo), "--depth", str(depth), "--trajectories", "left,sideways"], "trajectories: expected"),
        "dynamic image": ([str(photo), "--depth", str(depth), "--dynamic"], "needs a video"),
        "lyra 4D without models": ([str(tmp_path / "clip.mp4"), "--backend", "lyra"], "decoder_dynamic"),
        "lyra without models": ([str(photo), "--depth", str(depth), "--backend", "lyra"], "the lyra backend needs"),
    }
    for name, (args, message) in cases.items():
        code = main(["generate", *args, "--out", str(tmp_path / "out.ply"), "--quiet"])
        stderr = capsys.readouterr().err
        assert code == 1, name
        assert message in stderr and "lyra generate: error:" in stderr and "Traceback" not in stderr, (name, stderr)
    assert not (tmp_path / "out.ply").exists()
    assert not (tmp_path / "out.ply.work").exists()  # missing models are found before any work starts


@pytest.mark.slow
def test_image_over_16_megapixels_is_downscaled_with_a_notice(tmp_path):
    big = np.zeros((4100, 4100, 3), np.uint8)  # 16.8 MP
    big[:, :2050] = 255
    iio.imwrite(tmp_path / "big.png", big)
    frames = read_input(tmp_path / "big.png")
    height, width = frames.size
    assert height * width <= MAX_PIXELS and height == width
    assert frames.notices and "downscaled" in frames.notices[0] and "16.8 megapixels" in frames.notices[0]
    small = read_input(tmp_path / "big.png", max_pixels=100 * 100)
    assert small.size == (100, 100) and small.frames[0, 50, 10].tolist() == [255, 255, 255]

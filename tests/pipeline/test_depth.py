"""Depth: tiny random Depth Pro and Depth Anything V2 metric models through the real loader, and depth files."""

import math

import numpy as np
import pytest
import torch

from lyra.errors import CheckpointError, InputDataError
from lyra.pipeline.depth import (
    DEFAULT_FOV_X_DEGREES,
    DepthEstimator,
    default_intrinsics,
    read_depth_file,
)


def _dinov2(image_size: int, patch: int, layers: int = 2, **extra) -> dict:
    return dict(model_type="dinov2", hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                intermediate_size=32, patch_size=patch, image_size=image_size, **extra)


@pytest.fixture(scope="module")
def depth_pro_dir(tmp_path_factory):
    from transformers import DepthProConfig, DepthProForDepthEstimation, DepthProImageProcessor

    torch.manual_seed(0)
    config = DepthProConfig(
        patch_size=16, fusion_hidden_size=16, intermediate_hook_ids=[1, 0], intermediate_feature_dims=[8, 8],
        scaled_images_ratios=[0.5, 1], scaled_images_overlap_ratios=[0.0, 0.5], scaled_images_feature_dims=[8, 8],
        merge_padding_value=1, use_fov_model=True, num_fov_head_layers=1,
        image_model_config=_dinov2(16, 4), patch_model_config=_dinov2(16, 4), fov_model_config=_dinov2(16, 4),
    )
    folder = tmp_path_factory.mktemp("depth_pro")
    DepthProForDepthEstimation(config).save_pretrained(folder)
    DepthProImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def _depth_anything(folder, kind: str):
    from transformers import AutoModelForDepthEstimation, DepthAnythingConfig, DPTImageProcessor

    torch.manual_seed(0)
    config = DepthAnythingConfig(
        backbone_config=_dinov2(28, 2, layers=4, out_indices=[1, 2, 3, 4], reshape_hidden_states=False),
        reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 8, 8], fusion_hidden_size=8, head_hidden_size=8,
        depth_estimation_type=kind, max_depth=20, patch_size=2,
    )
    AutoModelForDepthEstimation.from_config(config).save_pretrained(folder)
    DPTImageProcessor(size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=2).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def depth_anything_dir(tmp_path_factory):
    return _depth_anything(tmp_path_factory.mktemp("da_metric"), "metric")


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 48, 3), dtype=np.uint8)


def test_depth_pro_gives_metric_depth_from_its_field_of_view(depth_pro_dir, image, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    estimator = DepthEstimator.from_pretrained(depth_pro_dir)
    assert estimator.kind == "depth_pro"
    result = estimator.predict(image)
    assert result.depth.shape == (30, 48) and result.valid.any()
    fov = result.field_of_view_degrees
    assert fov is not None
    focal = 0.5 * 48 / math.tan(math.radians(0.5 * fov))
    assert result.intrinsics.tolist() == pytest.approx([focal, focal, 24.0, 15.0], rel=1e-5)
    # The same network with a known focal length: depth scales with it (z = f / (W * inverse depth)).
    known = estimator.predict(image, intrinsics=[2 * focal, 2 * focal, 24.0, 15.0])
    both = known.valid & result.valid
    assert both.any() and torch.allclose(known.depth[both], 2 * result.depth[both], rtol=1e-4)
    assert known.intrinsics[0].item() == pytest.approx(2 * focal)


def test_depth_pro_depth_is_focal_over_width_times_its_inverse_depth(depth_pro_dir, image):
    estimator = DepthEstimator.from_pretrained(depth_pro_dir)
    pixels = estimator.processor(images=image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        raw = estimator.model(pixel_values=pixels).predicted_depth  # [1, h, w] canonical inverse depth
    raw = torch.nn.functional.interpolate(raw[None], size=(30, 48), mode="bilinear", align_corners=False)[0, 0]
    result = estimator.predict(image, intrinsics=[100.0, 100.0, 24.0, 15.0])
    expected = 100.0 / (48 * raw)
    usable = (raw > 0) & (expected < 1e4)  # a random head also predicts <= 0: infinitely far, "no depth"
    assert usable.any() and (~usable).any()
    assert torch.equal(result.valid, usable)
    assert torch.allclose(result.depth[usable], expected[usable], rtol=1e-5)
    assert (result.depth[~usable] == 0).all()


def test_depth_anything_metric_uses_the_default_field_of_view(depth_anything_dir, image):
    estimator = DepthEstimator.from_pretrained(depth_anything_dir)
    assert estimator.kind == "depth_anything"
    progress = []
    result = estimator.predict(image, progress=lambda f, t: progress.append(f))
    assert result.depth.shape == (30, 48) and result.valid.any()
    assert result.field_of_view_degrees is None
    assert torch.equal(result.intrinsics, default_intrinsics(48, 30))
    assert result.intrinsics[0].item() == pytest.approx(24.0 / math.tan(math.radians(DEFAULT_FOV_X_DEGREES / 2)))
    # Metric head: sigmoid * max_depth, so every depth is within (0, 20] metres.
    assert 0 < result.depth[result.valid].min() and result.depth.max() <= 20.0
    assert progress[0] == 0.0 and progress[-1] == 1.0


def test_relative_depth_anything_is_refused(tmp_path):
    _depth_anything(tmp_path, "relative")
    with pytest.raises(CheckpointError, match="relative-depth"):
        DepthEstimator.from_pretrained(tmp_path)


def test_missing_depth_model_names_what_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="apple/DepthPro-hf"):
        DepthEstimator.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="huggingface-cli download"):
        DepthEstimator.from_pretrained("someone/no-such-depth-model")


# --------------------------------------------------------------------------- files
def test_npy_depth_reads_in_metres_with_given_intrinsics(tmp_path):
    depth = np.linspace(1, 5, 12, dtype=np.float32).reshape(3, 4)
    depth[0, 0] = np.nan
    depth[1, 1] = -1.0
    np.save(tmp_path / "d.npy", depth)
    result = read_depth_file(tmp_path / "d.npy", intrinsics=[10, 11, 2, 1.5])
    assert result.valid.tolist()[0][0] is False and result.valid.tolist()[1][1] is False
    assert result.valid.sum() == 10
    assert result.depth[2, 3].item() == pytest.approx(5.0)
    assert result.depth[0, 0].item() == 0.0  # invalid depth is stored as 0
    assert result.intrinsics.tolist() == [10, 11, 2, 1.5]


def test_png16_depth_uses_the_stated_units_and_zero_means_none(tmp_path):
    import imageio.v3 as iio

    raw = np.array([[0, 1000, 2500], [65535, 500, 1]], dtype=np.uint16)
    iio.imwrite(tmp_path / "d.png", raw)
    mm = read_depth_file(tmp_path / "d.png")
    assert mm.depth.tolist()[0] == pytest.approx([0.0, 1.0, 2.5])
    assert not mm.valid[0, 0] and mm.valid[0, 1]
    tum = read_depth_file(tmp_path / "d.png", png_units_per_metre=5000)  # TUM RGB-D convention
    assert tum.depth[0, 2].item() == pytest.approx(0.5)


def test_8bit_png_is_not_mistaken_for_depth(tmp_path):
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "d.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(InputDataError, match="16-bit"):
        read_depth_file(tmp_path / "d.png")


def test_exr_depth_reads_channel_z(tmp_path):
    import OpenEXR

    depth = np.array([[1.5, 2.0], [np.inf, 4.0]], dtype=np.float32)
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {"Z": depth}) as exr:
        exr.write(str(tmp_path / "d.exr"))
    result = read_depth_file(tmp_path / "d.exr")
    assert result.depth.tolist() == [[1.5, 2.0], [0.0, 4.0]]
    assert result.valid.tolist() == [[True, True], [False, True]]


def test_depth_is_resized_to_the_image_keeping_holes(tmp_path):
    depth = np.array([[1.0, np.nan], [3.0, 4.0]], dtype=np.float32)
    np.save(tmp_path / "d.npy", depth)
    result = read_depth_file(tmp_path / "d.npy", size=(4, 4))
    assert result.depth.shape == (4, 4)
    assert result.depth[:2, :2].eq(1.0).all() and not result.valid[:2, 2:].any()
    with pytest.raises(InputDataError, match="aspect ratios differ"):
        read_depth_file(tmp_path / "d.npy", size=(4, 8))


def test_bad_depth_files_are_named(tmp_path):
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(InputDataError, match="d.txt"):
        read_depth_file(tmp_path / "d.txt")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(InputDataError, match="bad.npy"):
        read_depth_file(tmp_path / "bad.npy")
    with pytest.raises(InputDataError, match="not found"):
        read_depth_file(tmp_path / "missing.exr")

"""The decode budget (lyra/limits.py): checked from headers before allocating, settable, in every reader."""

from __future__ import annotations

import gc
import io
import json
import warnings
import zipfile

import numpy as np
import pytest

from lyra import limits
from lyra.bounded_zip import BoundedZip
from lyra.errors import ArchiveError, ConfigError, DecodeBudgetError, InputDataError, SceneFileError
from lyra.scene import load, save
from tests.security.conftest import tiny_gaussians
from tests.security.hostile_corpus import write_raw_zip


@pytest.fixture
def budget():
    """Set limits for one test; the defaults come back after it."""
    previous = limits.current()
    yield limits.set_limits
    limits.set_limits(max_splats=previous.max_splats, max_decoded_mb=previous.max_decoded_bytes / (1 << 20),
                      max_image_pixels=previous.max_image_pixels, max_compression_ratio=previous.max_compression_ratio)


def test_a_budget_error_is_both_a_scene_and_an_input_error():
    assert issubclass(DecodeBudgetError, SceneFileError) and issubclass(DecodeBudgetError, InputDataError)


@pytest.mark.parametrize("value", [0, -1, float("nan"), "10", True])
def test_limits_must_be_positive_numbers(value):
    with pytest.raises(ConfigError):
        limits.set_limits(max_splats=value)


@pytest.mark.parametrize("name", ["a.ply", "a.compressed.ply", "a.splat", "a.spz", "a.sog"])
def test_every_scene_reader_refuses_more_splats_than_the_limit(tmp_path, budget, name):
    path = save(tiny_gaussians(64), tmp_path / name)
    budget(max_splats=63)
    with pytest.raises(DecodeBudgetError, match="at most 63 splats.*64 declared"):
        load(path)
    budget(max_splats=64)
    assert len(load(path)) == 64


def test_the_decoded_size_counts_sh_bands(tmp_path, budget):
    path = save(tiny_gaussians(10_000, sh_degree=3), tmp_path / "a.ply")
    budget(max_decoded_mb=limits.splat_bytes(10_000, 3) / (1 << 20) * 0.99)
    with pytest.raises(DecodeBudgetError, match="10,000 splats of SH degree 3"):
        load(path)


def test_a_torch_file_over_the_budget_is_refused_before_torch_reads_it(tmp_path, budget):
    import torch

    path = tmp_path / "lyra.pt"
    torch.save(torch.zeros(1, 50_000, 14), path)  # 2.8 MB stored
    budget(max_decoded_mb=1)
    with pytest.raises(DecodeBudgetError, match="MiB once decoded"):
        load(path)


def test_a_video_over_the_budget_is_refused_from_its_metadata(tmp_path, budget):
    from lyra.pipeline.inputs import read_input
    from lyra.render.video import write_video

    path = tmp_path / "clip.mp4"
    write_video(path, [np.full((64, 96, 3), 40 * i, np.uint8) for i in range(6)], fps=6)
    assert read_input(path).frames.shape == (6, 64, 96, 3)
    budget(max_decoded_mb=3 * 64 * 96 * 4 / (1 << 20))  # room for 4 frames, not 6
    with pytest.raises(DecodeBudgetError, match="frames of 96x64"):
        read_input(path)


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, budget):
    from PIL import Image

    from lyra.pipeline.depth import read_depth_file
    from lyra.pipeline.inputs import read_input

    Image.new("RGB", (300, 200), (9, 9, 9)).save(tmp_path / "photo.png")
    Image.fromarray(np.full((200, 300), 1000, np.uint16)).save(tmp_path / "depth.png")
    budget(max_image_pixels=50_000)
    with pytest.raises(DecodeBudgetError, match="300 x 200"):
        read_input(tmp_path / "photo.png")
    with pytest.raises(DecodeBudgetError, match="300 x 200"):
        read_depth_file(tmp_path / "depth.png")


def test_an_npy_header_is_checked_before_the_array_is_read(tmp_path):
    from lyra.pipeline.depth import read_depth_file

    np.save(tmp_path / "ok.npy", np.ones((20, 30), np.float32))
    assert read_depth_file(tmp_path / "ok.npy").depth.shape == (20, 30)
    with open(tmp_path / "huge.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (100000, 100000)})
    with pytest.raises(DecodeBudgetError, match=r"\[100000, 100000\]"):
        read_depth_file(tmp_path / "huge.npy")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_bounded_zip_reads_every_method_and_checks_the_crc(tmp_path, method):
    data = np.random.default_rng(0).integers(0, 255, 300_000, dtype=np.uint8).tobytes() + bytes(200_000)
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr("a.bin", data)
    with BoundedZip(path) as archive:
        assert archive.read("a.bin") == data
        target = io.BytesIO()
        assert archive.copy(archive.getinfo("a.bin"), target) == len(data) and target.getvalue() == data
        with pytest.raises(DecodeBudgetError, match="at most 1,000 bytes"):
            archive.read("a.bin", 1000)
    info = zipfile.ZipFile(path).getinfo("a.bin")
    raw = path.read_bytes()[info.header_offset + 30 + len("a.bin"):][: info.compress_size]
    bad = write_raw_zip(tmp_path / "bad.zip", [("a.bin", method, raw, len(data), info.CRC ^ 1)])
    with BoundedZip(bad) as archive, pytest.raises(ArchiveError, match="CRC"):
        archive.read("a.bin")


def test_a_member_deflated_past_the_ratio_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("frame_00000.ply", bytes(64 << 20))
    with pytest.raises(DecodeBudgetError, match="compressed at most 50:1"):  # frames' own, stricter ratio
        load(path)
    sog = path.with_name("bomb.sog")
    with zipfile.ZipFile(sog, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("meta.json", json.dumps({
            "version": 2, "count": 4, "means": {"mins": [0, 0, 0], "maxs": [1, 1, 1], "files": ["means_l.webp", "m.webp"]},
            "scales": {"codebook": [0.0], "files": ["s.webp"]}, "quats": {"files": ["q.webp"]},
            "sh0": {"codebook": [0.0], "files": ["c.webp"]}}))
        archive.writestr("means_l.webp", bytes(64 << 20))
    with pytest.raises(DecodeBudgetError, match="compressed at most 200:1"):
        load(sog)


def test_opening_a_sog_leaves_no_file_open(tmp_path):
    path = save(tiny_gaussians(32), tmp_path / "a.sog")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert len(load(path)) == 32
        with pytest.raises(SceneFileError):
            load(_truncated(path))
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]


def _truncated(path):
    broken = path.with_name("broken.sog")
    broken.write_bytes(path.read_bytes()[:-40])
    return broken

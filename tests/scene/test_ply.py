"""Standard 3DGS PLY: round trips, interoperability, liberal reading, clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import plyfile
import pytest
import torch

from lyra.errors import SceneFileError
from lyra.scene import load, save
from lyra.scene.formats import ply, ply_write
from lyra.scene.formats.checks import SceneFileWarning
from lyra.scene.sh import SH_C0

CORE = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]


def raw_columns(g, degree=None):
    """File-space columns of Gaussians built independently of lyra's writer: {name: [N] float64}."""
    sh = g.sh.double().numpy()
    k = sh.shape[1]
    cols = {"x": g.means[:, 0], "y": g.means[:, 1], "z": g.means[:, 2]}
    cols = {n: v.double().numpy() for n, v in cols.items()}
    for c in range(3):
        cols[f"f_dc_{c}"] = sh[:, 0, c]
    for c in range(3):  # channel-major, written out by hand: all red, then green, then blue
        for j in range(k - 1):
            cols[f"f_rest_{c * (k - 1) + j}"] = sh[:, 1 + j, c]
    p = g.opacities.double().numpy()
    cols["opacity"] = np.log(p / (1 - p))
    for i in range(3):
        cols[f"scale_{i}"] = np.log(g.scales[:, i].double().numpy())
    for i in range(4):
        cols[f"rot_{i}"] = g.quats[:, i].double().numpy()
    return cols


def write_with_plyfile(path, cols, order=None, dtype="f4", text=False, byte_order="<", extra=None):
    names = order or list(cols)
    fields = [(n, dtype) for n in names] + [(n, a.dtype.str) for n, a in (extra or {}).items()]
    rows = np.empty(len(cols["x"]), dtype=fields)
    for n in names:
        rows[n] = cols[n]
    for n, a in (extra or {}).items():
        rows[n] = a
    plyfile.PlyData([plyfile.PlyElement.describe(rows, "vertex")], text=text, byte_order=byte_order).write(str(path))


def assert_matches(loaded, g, atol=2e-6):
    assert len(loaded) == len(g)
    torch.testing.assert_close(loaded.means, g.means, atol=atol, rtol=0)
    torch.testing.assert_close(loaded.sh.contiguous(), g.sh, atol=atol, rtol=0)
    torch.testing.assert_close(loaded.opacities, g.opacities, atol=atol, rtol=1e-5)
    torch.testing.assert_close(loaded.scales, g.scales, atol=atol, rtol=1e-5)
    torch.testing.assert_close(loaded.quats, g.quats, atol=atol, rtol=0)


def test_round_trip_keeps_means_and_sh_exactly(tmp_path, gaussians_factory):
    g = gaussians_factory(50)
    save(g, tmp_path / "a.ply")
    back = load(tmp_path / "a.ply")
    assert torch.equal(back.means, g.means)
    assert torch.equal(back.sh, g.sh)
    torch.testing.assert_close(back.scales, g.scales, rtol=1e-6, atol=0)  # exp(log(s)) in float32
    torch.testing.assert_close(back.opacities, g.opacities, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(back.quats, g.quats, rtol=0, atol=2e-7)


def test_written_file_has_inria_property_order(tmp_path, gaussians_factory):
    save(gaussians_factory(3, sh_degree=1), tmp_path / "a.ply")
    names = [p.name for p in plyfile.PlyData.read(str(tmp_path / "a.ply"))["vertex"].properties]
    assert names == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"] + [f"f_rest_{i}" for i in range(9)] + CORE[6:]


def test_plyfile_reads_our_file_to_identical_columns(tmp_path, gaussians_factory):
    g = gaussians_factory(30)
    save(g, tmp_path / "a.ply")
    data = plyfile.PlyData.read(str(tmp_path / "a.ply"))["vertex"].data
    expected = raw_columns(g)
    for name in ["x", "y", "z", "f_dc_1", "f_rest_0", "f_rest_14", "f_rest_15", "f_rest_44", "rot_3"]:
        np.testing.assert_array_equal(data[name], expected[name].astype(np.float32), err_msg=name)
    np.testing.assert_allclose(data["opacity"], expected["opacity"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data["scale_2"], expected["scale_2"], rtol=1e-6)


def test_f_rest_channel_major_order_matches_hand_built_file(tmp_path, gaussians_factory):
    g = gaussians_factory(12, sh_degree=2)
    write_with_plyfile(tmp_path / "hand.ply", raw_columns(g))
    back = load(tmp_path / "hand.ply")
    assert torch.equal(back.sh, g.sh)  # f_rest_{c*(K-1)+j} == sh[:, 1+j, c]


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_reads_every_sh_degree(tmp_path, gaussians_factory, degree):
    g = gaussians_factory(7, sh_degree=degree)
    write_with_plyfile(tmp_path / "d.ply", raw_columns(g))
    back = load(tmp_path / "d.ply")
    assert back.sh_degree == degree
    assert_matches(back, g)


def test_reads_save_gaussians_orig_layout(tmp_path, gaussians_factory):
    """Official Lyra save_gaussians_orig: x y z f_dc_0..2 opacity scale_0..2 rot_0..3, no normals, degree 0."""
    g = gaussians_factory(9, sh_degree=0)
    write_with_plyfile(tmp_path / "orig.ply", raw_columns(g), order=CORE)
    back = load(tmp_path / "orig.ply")
    assert back.sh_degree == 0 and back.extras == {}
    assert_matches(back, g)


def test_reads_big_endian(tmp_path, gaussians_factory):
    g = gaussians_factory(9)
    write_with_plyfile(tmp_path / "be.ply", raw_columns(g), byte_order=">")
    assert_matches(load(tmp_path / "be.ply"), g)


def test_reads_double_precision(tmp_path, gaussians_factory):
    g = gaussians_factory(9)
    write_with_plyfile(tmp_path / "f8.ply", raw_columns(g), dtype="f8")
    assert_matches(load(tmp_path / "f8.ply"), g)


def test_reads_ascii(tmp_path, gaussians_factory):
    g = gaussians_factory(9, sh_degree=1)
    write_with_plyfile(tmp_path / "ascii.ply", raw_columns(g), text=True)
    assert_matches(load(tmp_path / "ascii.ply"), g, atol=1e-5)


def test_reads_shuffled_property_order(tmp_path, gaussians_factory):
    g = gaussians_factory(9)
    cols = raw_columns(g)
    order = list(np.random.default_rng(3).permutation(list(cols)))
    write_with_plyfile(tmp_path / "shuffled.ply", cols, order=order)
    assert_matches(load(tmp_path / "shuffled.ply"), g)


def test_extra_properties_are_kept_and_written_back(tmp_path, gaussians_factory):
    g = gaussians_factory(6, sh_degree=0)
    label = np.arange(6, dtype=np.uint8)
    weight = np.linspace(0, 1, 6).astype(np.float32)
    write_with_plyfile(tmp_path / "extra.ply", raw_columns(g), extra={"label": label, "weight": weight})
    back = load(tmp_path / "extra.ply")
    assert back.extras["label"].dtype == torch.uint8
    np.testing.assert_array_equal(back.extras["label"].numpy(), label)
    save(back, tmp_path / "again.ply")
    data = plyfile.PlyData.read(str(tmp_path / "again.ply"))["vertex"].data
    np.testing.assert_array_equal(data["label"], label)
    np.testing.assert_array_equal(data["weight"], weight)
    assert data.dtype["label"] == np.uint8


def test_point_cloud_rgb_is_used_when_f_dc_is_missing(tmp_path, gaussians_factory):
    g = gaussians_factory(4, sh_degree=0)
    cols = {k: v for k, v in raw_columns(g).items() if not k.startswith("f_dc")}
    rgb = {"red": np.array([0, 255, 128, 10], np.uint8), "green": np.zeros(4, np.uint8), "blue": np.full(4, 255, np.uint8)}
    write_with_plyfile(tmp_path / "rgb.ply", cols, extra=rgb)
    back = load(tmp_path / "rgb.ply")
    np.testing.assert_allclose(back.rgb()[:, 0].numpy(), rgb["red"] / 255.0, atol=1e-6)


def test_quaternions_are_normalized_on_load(tmp_path, gaussians_factory):
    g = gaussians_factory(5)
    cols = raw_columns(g)
    for i in range(4):
        cols[f"rot_{i}"] = cols[f"rot_{i}"] * 3.0
    write_with_plyfile(tmp_path / "q.ply", cols)
    torch.testing.assert_close(load(tmp_path / "q.ply").quats.norm(dim=1), torch.ones(5))


def test_sh_degree_option_truncates_on_save(tmp_path, gaussians_factory):
    g = gaussians_factory(5, sh_degree=3)
    save(g, tmp_path / "d1.ply", sh_degree=1)
    back = load(tmp_path / "d1.ply")
    assert back.sh_degree == 1 and torch.equal(back.sh, g.sh[:, :4])


def test_normals_false_writes_gsplat_layout(tmp_path, gaussians_factory):
    save(gaussians_factory(3, sh_degree=0), tmp_path / "n.ply", normals=False)
    names = [p.name for p in plyfile.PlyData.read(str(tmp_path / "n.ply"))["vertex"].properties]
    assert names == CORE


def test_existing_file_is_kept_without_overwrite(tmp_path, gaussians_factory):
    save(gaussians_factory(3), tmp_path / "a.ply")
    before = (tmp_path / "a.ply").read_bytes()
    with pytest.raises(SceneFileError, match="existing file"):
        save(gaussians_factory(4, seed=1), tmp_path / "a.ply", overwrite=False)
    assert (tmp_path / "a.ply").read_bytes() == before


def test_empty_scene_round_trips(tmp_path, gaussians_factory):
    save(gaussians_factory(0), tmp_path / "empty.ply")
    assert len(load(tmp_path / "empty.ply")) == 0


# --------------------------------------------------------------- bad input
def test_nan_splats_raise_with_count(tmp_path, gaussians_factory):
    cols = raw_columns(gaussians_factory(10))
    cols["x"][[2, 5]] = np.nan
    write_with_plyfile(tmp_path / "nan.ply", cols)
    with pytest.raises(SceneFileError, match="2 of 10 splats"):
        load(tmp_path / "nan.ply")


def test_drop_invalid_drops_nan_and_zero_quaternions_with_warning(tmp_path, gaussians_factory):
    g = gaussians_factory(10)
    cols = raw_columns(g)
    cols["f_rest_3"][1] = np.inf
    for i in range(4):
        cols[f"rot_{i}"][7] = 0.0
    write_with_plyfile(tmp_path / "bad.ply", cols)
    with pytest.warns(SceneFileWarning, match="dropped 2 of 10"):
        back = load(tmp_path / "bad.ply", drop_invalid=True)
    keep = [i for i in range(10) if i not in (1, 7)]
    assert torch.equal(back.means, g.means[keep])


def test_zero_quaternion_raises(tmp_path, gaussians_factory):
    cols = raw_columns(gaussians_factory(4))
    for i in range(4):
        cols[f"rot_{i}"][0] = 0.0
    write_with_plyfile(tmp_path / "zq.ply", cols)
    with pytest.raises(SceneFileError, match="zero quaternions"):
        load(tmp_path / "zq.ply")


def test_already_activated_opacities_warn(tmp_path, gaussians_factory):
    g = gaussians_factory(10)
    cols = raw_columns(g)
    cols["opacity"] = g.opacities.double().numpy()  # someone wrote sigmoid(o), not o
    write_with_plyfile(tmp_path / "act.ply", cols)
    with pytest.warns(SceneFileWarning, match="already activated"):
        load(tmp_path / "act.ply")


def test_linear_scales_warn(tmp_path, gaussians_factory):
    cols = raw_columns(gaussians_factory(10))
    for i in range(3):
        cols[f"scale_{i}"] = np.full(10, 40.0)
    write_with_plyfile(tmp_path / "lin.ply", cols)
    with pytest.warns(SceneFileWarning, match="linear scales"):
        load(tmp_path / "lin.ply")


def test_normal_file_loads_without_warnings(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "ok.ply")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(tmp_path / "ok.ply")


def test_truncated_payload_raises_before_allocating(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.ply")
    data = (tmp_path / "a.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(data[:-100])
    with pytest.raises(SceneFileError, match="truncated"):
        load(tmp_path / "t.ply")


def test_huge_vertex_count_raises(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.ply")
    data = (tmp_path / "a.ply").read_bytes().replace(b"element vertex 10\n", b"element vertex 99999999999999\n")
    (tmp_path / "huge.ply").write_bytes(data)
    with pytest.raises(SceneFileError, match="99999999999999 vertex rows"):
        load(tmp_path / "huge.ply")


def test_trailing_bytes_mean_count_mismatch(tmp_path, gaussians_factory):
    save(gaussians_factory(10), tmp_path / "a.ply")
    (tmp_path / "long.ply").write_bytes((tmp_path / "a.ply").read_bytes() + b"\0" * 248)
    with pytest.raises(SceneFileError, match="does not match the payload"):
        load(tmp_path / "long.ply")


def test_missing_properties_are_named(tmp_path, gaussians_factory):
    cols = raw_columns(gaussians_factory(3))
    del cols["rot_2"]
    write_with_plyfile(tmp_path / "m.ply", cols)
    with pytest.raises(SceneFileError, match="missing \\['rot_2'\\]"):
        load(tmp_path / "m.ply")


def test_wrong_f_rest_count_raises(tmp_path, gaussians_factory):
    cols = raw_columns(gaussians_factory(3, sh_degree=1))
    del cols["f_rest_8"]
    write_with_plyfile(tmp_path / "r.ply", cols)
    with pytest.raises(SceneFileError, match="f_rest"):
        load(tmp_path / "r.ply")


def test_header_without_end_raises(tmp_path):
    (tmp_path / "h.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\n")
    with pytest.raises(SceneFileError, match="end_header"):
        load(tmp_path / "h.ply")


def test_unknown_property_type_raises(tmp_path):
    (tmp_path / "h.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float128 x\nend_header\n")
    with pytest.raises(SceneFileError, match="header line 4"):
        load(tmp_path / "h.ply")


def test_sequence_passed_to_ply_writer_raises(tmp_path, gaussians_factory):
    from lyra.scene import GaussianSequence

    with pytest.raises(SceneFileError, match="GaussianSequence"):
        ply.write(GaussianSequence([gaussians_factory(2)]), tmp_path / "s.ply")


def test_dc_convention_matches_base_color(tmp_path, gaussians_factory):
    g = gaussians_factory(4, sh_degree=0)
    save(g, tmp_path / "c.ply")
    data = plyfile.PlyData.read(str(tmp_path / "c.ply"))["vertex"].data
    np.testing.assert_allclose(0.5 + SH_C0 * data["f_dc_0"], g.rgb()[:, 0].numpy(), atol=1e-6)


def test_gsplat_exported_ply_loads_to_same_values(tmp_path, gaussians_factory):
    import gsplat

    g = gaussians_factory(40, sh_degree=3)
    gsplat.export_splats(g.means, g.scales.log(), g.quats, torch.logit(g.opacities), g.sh[:, :1], g.sh[:, 1:],
                         format="ply", save_to=str(tmp_path / "gsplat.ply"))
    back = load(tmp_path / "gsplat.ply")
    assert torch.equal(back.means, g.means) and torch.equal(back.sh, g.sh)
    assert_matches(back, g)


def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, gaussians_factory, monkeypatch):
    save(gaussians_factory(5), tmp_path / "a.ply")
    before = (tmp_path / "a.ply").read_bytes()

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ply_write, "_stream_float_rows", explode)
    with pytest.raises(SceneFileError, match="disk full"):
        save(gaussians_factory(9, seed=3), tmp_path / "a.ply")
    assert (tmp_path / "a.ply").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.ply"]


def test_ascii_file_with_huge_count_raises_before_parsing(tmp_path, gaussians_factory):
    write_with_plyfile(tmp_path / "a.ply", raw_columns(gaussians_factory(3, sh_degree=0)), text=True)
    data = (tmp_path / "a.ply").read_bytes().replace(b"element vertex 3\n", b"element vertex 500000000\n")
    (tmp_path / "huge.ply").write_bytes(data)
    with pytest.raises(SceneFileError, match="truncated, or the header counts are wrong"):
        load(tmp_path / "huge.ply")


def test_chunked_two_thread_read_and_write_match_the_single_chunk_path(tmp_path, gaussians_factory, monkeypatch):
    """Tiny chunks force the streaming reader/writer through many chunks on two threads,
    including NaN detection in a late chunk; results must equal the one-chunk path."""
    g = gaussians_factory(n=1000, sh_degree=3)
    save(g, tmp_path / "reference.ply")
    reference_bytes = (tmp_path / "reference.ply").read_bytes()
    for module in (ply, ply_write):
        monkeypatch.setattr(module, "CHUNK_BYTES", 248 * 7)  # 7 rows per chunk, ~143 chunks
    monkeypatch.setattr(ply, "READ_THREADS", 2)
    monkeypatch.setattr(ply_write, "WRITE_THREADS", 2)
    save(g, tmp_path / "chunked.ply")
    assert (tmp_path / "chunked.ply").read_bytes() == reference_bytes
    assert_matches(load(tmp_path / "chunked.ply"), g)

    poisoned = g.clone()
    poisoned.means[987, 1] = float("nan")
    save(poisoned, tmp_path / "nan.ply")
    with pytest.raises(SceneFileError, match="NaN"):
        load(tmp_path / "nan.ply")
    with pytest.warns(SceneFileWarning, match="1"):
        clean = load(tmp_path / "nan.ply", drop_invalid=True)
    assert len(clean) == 999

"""The share page (lyra.render.share, ``lyra share``): viser's recording inside its single-file client."""

from __future__ import annotations

import base64
import re

import msgspec
import pytest
import zstandard

from lyra.cli import main
from lyra.errors import InputDataError, SceneFileError
from lyra.render.share import NOTE_ELEMENT_ID, share_page, write_share_page
from lyra.scene import GaussianSequence, save
from lyra.scene.synthetic import random_gaussians

SPLAT_BYTES = 32  # viser's client buffer: one uint32 [8] row per splat


def recording(page_html: str) -> dict:
    """The viser recording inlined in a page: base64 -> (size, zstd) -> (msgpack length, msgpack, buffers)."""
    data = base64.b64decode(re.search(r'__VISER_EMBED_DATA__="([^"]*)"', page_html).group(1))
    inner = zstandard.ZstdDecompressor().decompress(data[8:], max_output_size=int.from_bytes(data[:8], "little"))
    length = int.from_bytes(inner[:8], "little")
    return msgspec.msgpack.decode(inner[8:8 + length])


def messages(record: dict, kind: str) -> list[tuple[float, dict]]:
    return [(t, m) for t, m in record["messages"] if m["type"] == kind]


def test_static_page_holds_every_splat_and_the_starting_view():
    g = random_gaussians(3000, sh_degree=0)
    page = share_page(g)
    record = recording(page.html)
    assert record["durationSeconds"] == 0.0  # no playback bar for a static scene
    assert len(messages(record, "GaussianSplatsMessage")) == 1
    assert record["binaryBufferLengths"] == [3000 * SPLAT_BYTES]
    assert len(messages(record, "SetCameraPositionMessage")) == 1
    assert page.splats == page.original_splats == [3000] and page.notes == []
    assert NOTE_ELEMENT_ID not in page.html  # nothing to tell


def test_page_is_self_contained():
    page = share_page(random_gaussians(200, sh_degree=0)).html
    assert "<script" in page and "__VISER_EMBED_DATA__" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no external script, style or link


def test_sh_beyond_dc_is_baked_and_the_page_says_so():
    page = share_page(random_gaussians(500, sh_degree=2))
    assert any("baked" in note for note in page.notes)
    assert NOTE_ELEMENT_ID in page.html and "SH degree 2" in page.html


def test_a_4d_scene_plays_back_frame_after_frame():
    clip = GaussianSequence([random_gaussians(100 + 10 * i, sh_degree=0, seed=i) for i in range(4)], fps=8)
    record = recording(share_page(clip).html)
    assert record["durationSeconds"] == pytest.approx(4 / 8)
    assert len(messages(record, "GaussianSplatsMessage")) == 4
    shown = sorted((t, m["name"]) for t, m in messages(record, "SetSceneNodeVisibilityMessage")
                   if m["visible"] and "frame_" in m["name"])
    assert [name.split("_")[-1] for _, name in shown] == ["0000", "0001", "0002", "0003"]
    assert [t for t, _ in shown] == pytest.approx([0.0, 1 / 8, 2 / 8, 3 / 8])


def test_a_page_over_the_budget_is_decimated_to_fit_and_says_so():
    g = random_gaussians(30000, sh_degree=0)
    full = share_page(g)
    budget_mb = 0.6 * full.size_bytes / 1e6
    page = share_page(g, max_mb=budget_mb)
    assert page.size_bytes <= budget_mb * 1e6
    assert page.original_splats == [30000] and 1000 < page.splats[0] < 30000
    assert any("Decimated" in note for note in page.notes) and "Decimated" in page.html


def test_a_budget_below_the_client_itself_is_refused():
    with pytest.raises(InputDataError, match="max-mb"):
        share_page(random_gaussians(20000, sh_degree=0), max_mb=0.1)
    with pytest.raises(InputDataError, match="positive"):
        share_page(random_gaussians(10, sh_degree=0), max_mb=0)


def test_write_share_page_never_replaces_without_overwrite(tmp_path):
    path = tmp_path / "p.html"
    path.write_text("keep")
    with pytest.raises(SceneFileError):
        write_share_page(random_gaussians(10, sh_degree=0), path)
    assert path.read_text() == "keep"


def test_lyra_share_writes_exactly_one_file(tmp_path, capsys):
    save(random_gaussians(2000, sh_degree=1), tmp_path / "in" / "scene.ply")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert main(["share", str(tmp_path / "in" / "scene.ply"), "--out", str(out_dir / "page.html"), "--no-progress"]) == 0
    assert [p.name for p in out_dir.iterdir()] == ["page.html"]
    assert recording((out_dir / "page.html").read_text())["binaryBufferLengths"] == [2000 * SPLAT_BYTES]
    printed = capsys.readouterr().out
    assert f"wrote {out_dir / 'page.html'}" in printed and "note: Colours are baked" in printed
    assert "viser" not in printed.lower().replace("viser's", "")  # viser's server banner stays quiet


def test_lyra_share_refuses_an_existing_page_and_other_suffixes(tmp_path, capsys):
    save(random_gaussians(10, sh_degree=0), tmp_path / "scene.ply")
    (tmp_path / "page.html").write_text("keep")
    assert main(["share", str(tmp_path / "scene.ply"), "--out", str(tmp_path / "page.html")]) == 1
    assert (tmp_path / "page.html").read_text() == "keep"
    assert main(["share", str(tmp_path / "scene.ply"), "--out", str(tmp_path / "page.png")]) == 1
    assert ".html" in capsys.readouterr().err and not (tmp_path / "page.png").exists()

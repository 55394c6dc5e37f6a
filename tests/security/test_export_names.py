"""Finding 6 and 7 (export names): overlong, deeply nested and control-character names are refused clearly."""

from __future__ import annotations

import pytest

from lyra import fileio
from lyra.errors import LyraError
from viewer.export import resolve_export_path

HOSTILE_NAMES = {
    "300 characters": "a" * 300,
    "2000 levels": "/".join(["d"] * 2000) + "/scene",
    "newline": "scene\nINFO: export done",
    "carriage return": "scene\rX",
    "right-to-left override": "scene\u202egnp.ply",
    "zero-width joiner": "sce\u200dne",
    "NUL": "scene\0.ply",
    "escape sequence": "scene\x1b[31m",
    "line separator": "scene\u2028x",
    "long component": "d/" + "b" * 256,
}


@pytest.mark.parametrize("label", sorted(HOSTILE_NAMES))
def test_hostile_export_names_are_refused(tmp_path, label):
    with pytest.raises(LyraError) as info:
        resolve_export_path(tmp_path, HOSTILE_NAMES[label], "ply")
    message = str(info.value)
    assert "\n" not in message and "\u202e" not in message and len(message) < 400
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["scene", "sub/dir/scene", "Szene-ü_ñ 2", "a" * 200])
def test_ordinary_names_pass(tmp_path, name):
    assert resolve_export_path(tmp_path, name, "ply").name.endswith(".ply")
    assert fileio.check_file_name(name) == name

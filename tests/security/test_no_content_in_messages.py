"""Finding 3 (leaks): error messages never quote a file's content, whatever the file looks like."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import pytest

from lyra.errors import SceneFileError
from lyra.scene import load

SECRET = "root:*:20151:0:99999:7:::SECRET"


def _pickle_with_global() -> bytes:
    class Evil:
        def __reduce__(self):
            return (eval, (SECRET,))
    return pickle.dumps(Evil())


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


HOSTILE = {
    "shadow.ply": SECRET.encode() + b"\nbin:*:18000\n",
    "shadow": SECRET.encode() * 3,
    "shadow.splat": SECRET.encode()[:31],
    "header.ply": f"ply\nformat binary_little_endian 1.0\n{SECRET}\nend_header\n".encode(),
    "format.ply": f"ply\nformat {SECRET} 1.0\nend_header\n".encode(),
    "element.ply": f"ply\nformat ascii 1.0\nelement vertex {SECRET}\nend_header\n".encode(),
    "ascii.ply": ("ply\nformat ascii 1.0\nelement vertex 1\n" + "".join(f"property float {p}\n" for p in
                  ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                   "rot_0", "rot_1", "rot_2", "rot_3"]) + f"end_header\n{SECRET} 1 2 3\n").encode(),
    "pickle.ply": b"\x80" + _pickle_with_global()[1:],
    "torchzip.pt": _zip({"archive/data.pkl": _pickle_with_global(), "archive/version": b"3\n"}),
    "members.zip": _zip({f"../{SECRET}.ply": b"x"}),
    "dupes.zip": _zip({f"a/{SECRET}.ply": b"x", f"b/{SECRET}.ply": b"y"}),
    "badmember.zip": _zip({"frame_0.ply": SECRET.encode()}),
    "shadow.spz": SECRET.encode() * 2,
    "gzip.spz": b"\x1f\x8b" + SECRET.encode(),
    "bundle.sog": _zip({"meta.json": json.dumps({"version": SECRET, "count": SECRET}).encode()}),
    "names.sog": _zip({"meta.json": json.dumps({"version": 2, "count": 1, "means": {"files": [SECRET, SECRET],
                                                 "mins": [0, 0, 0], "maxs": [1, 1, 1]}}).encode()}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_file_content_never_reaches_the_message(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    with pytest.raises(SceneFileError) as info:
        load(path)
    assert "SECRET" not in str(info.value) and "root:" not in str(info.value), str(info.value)


@pytest.mark.parametrize("manifest", [
    {"frames": SECRET},
    {"frames": [SECRET, 1]},
    {"frames": [SECRET]},
    {"times": SECRET},
    {"times": [SECRET]},
    {"fps": SECRET},
    {"frames": ["frame_0.ply"], "times": [1.0, SECRET]},
])
def test_manifest_values_are_not_quoted(tmp_path, gaussians, manifest):
    from lyra.scene import save

    save(gaussians(3), tmp_path / "frame_0.ply")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SceneFileError) as info:
        load(tmp_path)
    assert "SECRET" not in str(info.value), str(info.value)


def test_invalid_json_manifest_is_not_quoted(tmp_path, gaussians):
    from lyra.scene import save

    save(gaussians(3), tmp_path / "frame_0.ply")
    (tmp_path / "manifest.json").write_text(SECRET)
    with pytest.raises(SceneFileError, match="invalid JSON at line 1") as info:
        load(tmp_path)
    assert "SECRET" not in str(info.value)

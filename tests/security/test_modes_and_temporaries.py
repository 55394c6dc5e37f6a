"""Finding 7: written files and folders honour the umask, an overwrite keeps the mode, stale temporaries go."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from lyra import fileio
from lyra.scene import save
from tests.security.conftest import tiny_gaussians


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_new_files_and_folders_honour_the_umask(tmp_path, umask, mask):
    umask(mask)
    assert fileio.current_umask() == mask
    for name in ("a.ply", "a.compressed.ply", "a.splat"):
        save(tiny_gaussians(8), tmp_path / name)
        assert _mode(tmp_path / name) == 0o666 & ~mask, name
    save(tiny_gaussians(8), tmp_path / "clip", format="sequence")
    assert _mode(tmp_path / "clip") == 0o777 & ~mask
    assert _mode(tmp_path / "clip" / "frame_00000.ply") == 0o666 & ~mask
    assert _mode(tmp_path / "clip" / "manifest.json") == 0o666 & ~mask


def test_an_overwritten_file_keeps_its_mode(tmp_path, umask):
    umask(0o077)
    target = tmp_path / "a.ply"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    save(tiny_gaussians(8), target, overwrite=True)
    assert _mode(target) == 0o644
    assert target.read_bytes()[:3] == b"ply"


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_our_naming_are_cleaned_on_the_next_write(tmp_path):
    dead = _dead_pid()
    stale_file = tmp_path / f".big.ply.lyra-{dead}.abcd1234.tmp"
    stale_file.write_bytes(b"\0" * 4096)
    stale_dir = tmp_path / f".clip.lyra-{dead}.zz99yy88.tmp"
    (stale_dir / "sub").mkdir(parents=True)
    (stale_dir / "sub" / "frame.ply").write_bytes(b"x")
    live = tmp_path / f".other.ply.lyra-{os.getpid()}.qwer5678.tmp"  # a write in progress in this process
    live.write_bytes(b"x")
    unrelated = tmp_path / ".big.ply.abcd1234.tmp"  # not our naming: never touched
    unrelated.write_bytes(b"x")
    save(tiny_gaussians(8), tmp_path / "new.ply")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([live.name, unrelated.name, "new.ply"])


def test_old_temporaries_are_stale_even_if_the_pid_is_alive(tmp_path):
    old = tmp_path / f".a.ply.lyra-{os.getpid()}.abcd1234.tmp"
    old.write_bytes(b"x")
    os.utime(old, (1, 1))
    assert fileio.clean_stale_temporaries(tmp_path) == [old.name]


def test_interrupted_write_leaves_a_temporary_that_the_next_start_cleans(tmp_path):
    # A writer killed mid-write (SIGKILL: no cleanup handlers run) leaves its temp file behind.
    code = (
        "import os, sys\n"
        "from lyra.fileio import atomic_write\n"
        f"with atomic_write({str(tmp_path / 'scene.ply')!r}) as handle:\n"
        "    handle.write(b'x' * 100000); handle.flush()\n"
        "    os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.getcwd()}, check=False)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".scene.ply.lyra-"), left
    assert fileio.clean_stale_temporaries(tmp_path) == left
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_decoder_weights_and_the_tokenizers_safetensors_honour_the_umask(tmp_path, umask, mask):
    """safetensors creates its files 0600; what we publish through atomic_directory follows the umask."""
    from lyra.model import save_decoder
    from lyra.teacher.synthetic import tiny_random_tokenizer
    from tests.conftest import tiny_decoder

    umask(mask)
    save_decoder(tiny_decoder("static"), tmp_path / "decoder")
    assert _mode(tmp_path / "decoder" / "model.safetensors") == 0o666 & ~mask
    assert _mode(tmp_path / "decoder" / "config.yaml") == 0o666 & ~mask
    with fileio.atomic_directory(tmp_path / "tokenizer") as tmp:
        tiny_random_tokenizer().save_pretrained(tmp)
    written = [p for p in (tmp_path / "tokenizer").rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in written)
    assert all(_mode(p) == 0o666 & ~mask for p in written), {p.name: oct(_mode(p)) for p in written}

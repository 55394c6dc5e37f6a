"""Tiny files that declare gigabytes are refused with a LyraError, fast, under a 5 GiB address-space cap.

Each case of :mod:`tests.security.hostile_corpus` is generated here and loaded
in a child process whose ``RLIMIT_AS`` is 5 GiB (the outside check's setting):
the child must print a LyraError within the time bound, never a MemoryError, a
traceback or a load that succeeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.security.hostile_corpus import CASES, LOADER

ADDRESS_SPACE_BYTES = 5 << 30
# Generous for a loaded 2-core CI box: importing torch is most of it; a refusal itself takes well under a second.
SECONDS = 90.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    built: dict = {}

    def build(case: str) -> Path:
        generator, _ = CASES[case]
        if generator not in built:
            built[generator] = generator(folder)
        return built[generator]

    return build


def load_capped(reader: str, path: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LOADER, reader, str(path), str(ADDRESS_SPACE_BYTES)],
                          capture_output=True, text=True, timeout=SECONDS * 2, env=env, cwd=ROOT)
    return done, time.perf_counter() - start


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_refused_fast_under_an_address_space_cap(corpus, case):
    path = corpus(case)
    assert path.stat().st_size < 8 << 20, "the corpus is of small files that declare large ones"
    done, seconds = load_capped(CASES[case][1], path)
    assert done.returncode == 0 and done.stdout.startswith("LyraError"), (done.stdout, done.stderr[-3000:])
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stdout
    assert seconds < SECONDS


def test_a_lying_bzip2_member_is_refused_after_reading_no_more_than_it_declared(tmp_path):
    """In process: the member declares 1,000 bytes; the reader stops at 1,001, whatever the stream holds."""
    import bz2
    import zipfile

    from lyra.bounded_zip import BoundedZip
    from lyra.errors import DecodeBudgetError
    from tests.security.hostile_corpus import write_raw_zip

    raw = bz2.compress(bytes(50 << 20))  # 50 MiB of zeros in a few KB
    path = write_raw_zip(tmp_path / "lie.zip", [("a.bin", zipfile.ZIP_BZIP2, raw, 1000, 0)])
    pieces = []
    with BoundedZip(path) as archive, pytest.raises(DecodeBudgetError, match="no larger than its declared 1,000 bytes"):
        for piece in archive.chunks(archive.getinfo("a.bin")):
            pieces.append(len(piece))
    assert sum(pieces) <= 1000

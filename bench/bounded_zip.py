"""Bounded zip member reads (lyra.bounded_zip) against Python's zipfile, per compression method.

Prints one JSON object: for each method, the seconds zipfile's ``read`` and
BoundedZip's ``read`` take on the same member (half random bytes, half zeros:
what a splat frame compresses like), best of ``--repeats``, and their ratio
(``bounded_over_zipfile``; 1.0 = as fast). BoundedZip decompresses every member
itself with an output cap, so bzip2/LZMA bombs cannot expand inside one read.
Usage: ``python bench/bounded_zip.py [--mib 64] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

from lyra.bounded_zip import BoundedZip

METHODS = {"stored": zipfile.ZIP_STORED, "deflate": zipfile.ZIP_DEFLATED, "bzip2": zipfile.ZIP_BZIP2,
           "lzma": zipfile.ZIP_LZMA}


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = args.mib << 20
    data = os.urandom(size // 2) + bytes(size - size // 2)
    result = {"member_bytes": size, "methods": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, method in METHODS.items():
            path = Path(tmp) / f"{name}.zip"
            with zipfile.ZipFile(path, "w", method) as archive:
                archive.writestr("member", data)
            with zipfile.ZipFile(path) as archive:
                baseline = best(lambda a=archive: a.read("member"), args.repeats)
            with BoundedZip(path) as archive:
                assert archive.read("member") == data
                ours = best(lambda a=archive: a.read("member"), args.repeats)
            result["methods"][name] = {"zipfile_s": round(baseline, 4), "bounded_s": round(ours, 4),
                                       "bounded_over_zipfile": round(ours / baseline, 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()

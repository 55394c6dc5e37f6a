#!/usr/bin/env bash
# Create (or update) the project's virtual environment with everything the
# viewer, the library and the tests need. Idempotent; VENV picks the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# torch first, pinned, so nothing below pulls another (multi-GB) build.
"${PIP[@]}" install torch==2.14.1 torchvision==0.29.1
"${PIP[@]}" install -e ".[dev]"
# NVIDIA's usd-convert-gsplat: the reference USD writer tests/scene/test_usd.py compares ours with. It pins
# numpy==2.3.1 exactly, which would replace the venv's numpy, so it goes in without its dependencies
# (it needs only numpy and usd-core, both installed above).
"${PIP[@]}" install --no-deps usd-convert-gsplat==0.1.15

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

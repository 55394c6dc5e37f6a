"""DESIGN.md's import rules, read from the source (every import, also those inside functions).

* nothing under ``lyra/`` imports ``scenes`` (the demo builder) or ``viewer``;
* no viewer module imports ``lyra.cli`` (the CLI and the viewer are both thin doors over the library);
* the library's packages import downhill only: scene <- edit, render <- model <- teacher <- pipeline
  <- distill <- cli (the top-level helpers errors, fileio, progress, device, limits, safe_yaml, bounded_zip
  are below everything).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Package -> level; a module may import only packages at its level or below (its own package included).
LEVELS = {"errors": 0, "fileio": 0, "progress": 0, "device": 0, "limits": 0, "safe_yaml": 0, "bounded_zip": 0, "scene": 1, "edit": 2, "render": 2, "model": 3,
          "teacher": 4, "pipeline": 5, "distill": 6, "cli": 7, "__main__": 7, "__init__": 7}


def imported_modules(path: Path, package: str | None = None) -> list[str]:
    """Every module name ``path`` imports (absolute; relative imports resolved against its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = package if package is not None else ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


def lyra_package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "lyra" and len(parts) > 1 else None


def test_the_rules_see_imports_inside_functions(tmp_path):
    """The checker itself: a lazy import inside a function counts (most of the project's imports are lazy)."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from scenes import build_demo\n    from ..cli import decode\n")
    assert {"scenes", "lyra.cli.decode"} <= set(imported_modules(probe, "lyra.pipeline"))


@pytest.mark.parametrize("path", sources("lyra"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_imports_neither_the_demo_builder_nor_the_viewer(path):
    bad = [n for n in imported_modules(path) if top(n) in ("scenes", "viewer")]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", sources("viewer"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_viewer_never_imports_the_command_line(path):
    bad = [n for n in imported_modules(path) if n == "lyra.cli" or n.startswith("lyra.cli.")]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", sources("lyra"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_library_imports_downhill_only(path):
    own = path.relative_to(ROOT / "lyra").parts[0].removesuffix(".py")
    level = LEVELS[own]
    uphill = sorted({n for n in imported_modules(path) if (p := lyra_package(n)) in LEVELS and LEVELS[p] > level
                     and p != own})
    assert not uphill, f"{path.relative_to(ROOT)} ({own}, level {level}) imports uphill: {uphill}"


# ------------------------------------------------------------------ one place for each rule
ONE_PLACE = {
    r"0\.2820947": "lyra/scene/sh.py",  # SH_C0
    r"\b8 \* \([^()]+ - 1\) \+ 1": None,  # the latent/frame relation: lyra.model.tokenizer.video_frames only
    r"\bdef resolve_device\b": "lyra/device.py",
    r"\bdef parse_times\b": "lyra/pipeline/request.py",
    r"\bTRAJECTORY_FOLDERS\s*(\[[^]]+\])?\s*=": "lyra/render/trajectories.py",
    r"\bclass GenerateRequest\b": "lyra/pipeline/request.py",
}


@pytest.mark.parametrize("pattern", sorted(ONE_PLACE))
def test_each_rule_is_written_in_one_place(pattern):
    import re

    found = sorted({str(p.relative_to(ROOT)) for folder in ("lyra", "viewer", "scenes") for p in sources(folder)
                    if re.search(pattern, p.read_text())})
    expected = [ONE_PLACE[pattern]] if ONE_PLACE[pattern] else []
    assert found == expected

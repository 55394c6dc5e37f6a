"""The README's Python example runs as written (documentation that cannot rot)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert "torch.Size([96, 128, 3]) torch.Size([96, 128]) torch.Size([96, 128])" in printed


def test_readme_quick_start_commands_match_ci():
    ci = (README.parent / ".ci" / "run").read_text()
    quick_start = README.read_text().split("## Quick start", 1)[1].split("## ", 1)[0]
    test_command = "bash scripts/setup.sh && .venv/bin/python -m pytest"
    assert test_command in quick_start and test_command in ci
    assert "bash scripts/setup.sh && .venv/bin/python launch.py" in quick_start

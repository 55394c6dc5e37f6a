"""Hostile YAML (aliases, deep nesting, huge values) and registry files give a LyraError, fast."""

from __future__ import annotations

import time

import pytest

from lyra.errors import CheckpointError, ConfigError
from lyra.model.registry import load_registry
from lyra.safe_yaml import MAX_DEPTH, parse_yaml

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("LYRA_MODELS", str(tmp_path / "user-models.yaml"))


def test_plain_yaml_with_anchors_but_no_aliases_parses():
    assert parse_yaml("a: &x 1\nb: [1, 2, {c: d}]\n", "t") == {"a": 1, "b": [1, 2, {"c": "d"}]}


def test_billion_laughs_is_refused_fast():
    assert len(BILLION_LAUGHS) < 1000
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases"):
        parse_yaml(BILLION_LAUGHS, "bomb.yaml")
    assert time.perf_counter() - start < 2.0


def test_deep_nesting_is_refused():
    with pytest.raises(ConfigError, match=f"deeper than {MAX_DEPTH}"):
        parse_yaml("[" * 20000 + "]" * 20000, "deep.yaml")


def _registry(tmp_path, text: str):
    (tmp_path / "user-models.yaml").write_text(text)
    return load_registry()


@pytest.mark.parametrize("text, message", [
    ("gen3c:\n  path: " + "[" * 20000 + "]" * 20000 + "\n", "deeper than"),
    ("gen3c:\n  path: " + "x" * (3 << 20) + "\n", "at most"),
    ("gen3c:\n  path: 5\n", "must be a string"),
    ("gen3c:\n  path: [a, b]\n", "must be a string"),
    (BILLION_LAUGHS + "\n", "aliases"),
    ("gen3c:\n  path: /x\n  hub: " + "h" * 5000 + "\n", "at most 4096"),
    ("1: {path: /x}\n", "model names must be strings"),
])
def test_hostile_registry_files_raise_checkpoint_errors(tmp_path, text, message):
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=message):
        _registry(tmp_path, text)
    assert time.perf_counter() - start < 5.0


def test_a_registry_of_aliases_is_refused(tmp_path):
    text = "base: &b {hub: org/x}\ngen3c: *b\n"
    with pytest.raises(CheckpointError, match="aliases"):
        _registry(tmp_path, text)

"""The one way the project reads YAML (configs, the model registry): safe, small, shallow, without aliases.

``yaml.safe_load`` builds no objects, but it accepts aliases: a 628-byte file of
nested ``&a [*b, *b, ...]`` anchors (the "billion laughs") becomes a value that
every later walk (validation, printing, merging) visits 10^9 times, and 20,000
nested brackets end in a RecursionError. So
:func:`parse_yaml` / :func:`read_yaml`:

* refuse any alias (``*name``) as soon as the parser meets it (anchors alone are harmless);
* refuse nesting deeper than :data:`MAX_DEPTH` levels;
* refuse text longer than :data:`MAX_YAML_BYTES`.

Every problem raises ``error(message)`` (the caller's LyraError type; ConfigError by default),
naming the source and what was wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from lyra.errors import ConfigError, LyraError

MAX_YAML_BYTES = 1 << 20  # configs and registries are a few KB
MAX_DEPTH = 32


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting while composing (before anything is built)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed here", mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str | bytes, source: str, error: type[Exception] = ConfigError) -> object:
    """The value of a YAML document (safe types only), or ``error`` naming ``source`` (see the module docstring)."""
    if len(text) > MAX_YAML_BYTES:
        raise error(f"{source}: expected a YAML file of at most {MAX_YAML_BYTES // 1024} KiB, found {len(text)} bytes")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{source}: expected UTF-8 YAML, found bytes that are not UTF-8") from None
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise error(f"{source}: expected plain YAML, found {problem}{where}") from None
    except RecursionError:
        raise error(f"{source}: expected plain YAML, found values nested too deeply") from None


def read_yaml(path: str | os.PathLike, error: type[Exception] = ConfigError) -> object:
    """:func:`parse_yaml` of a file (read at most MAX_YAML_BYTES + 1 bytes); ``error`` when it cannot be read."""
    from lyra.fileio import open_regular

    path = Path(path)
    try:
        with open_regular(path, "a YAML file") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except LyraError as exc:  # open_regular's SceneFileError (nothing there, a folder, a FIFO), in the caller's type
        raise error(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: could not read the YAML file ({type(exc).__name__})") from None
    return parse_yaml(data, str(path), error)

"""The model registry: one YAML maps model names to local paths or Hugging Face hub ids.

Defaults ship as ``lyra/model/models.yaml`` (gen3c, tokenizer, t5, depth,
depth_anything_v2, decoder_static, decoder_dynamic). A user file overrides
them field by field: ``$LYRA_MODELS`` if set, else
``$XDG_CONFIG_HOME/lyra-studio/models.yaml`` (``~/.config/...`` by default).

Resolution never downloads: a configured ``path`` that exists wins; otherwise
the ``hub`` repo is looked up in the local Hugging Face cache only
(``local_files_only``). A model found nowhere raises :class:`ModelNotFoundError`
naming the path and the hub id / file to get. It lives in ``lyra.model`` so both
the teacher and the pipeline can use it (imports run downhill).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from lyra.errors import CheckpointError
from lyra.safe_yaml import read_yaml

DEFAULTS_FILE = Path(__file__).with_name("models.yaml")
_FIELDS = ("description", "hub", "subfolder", "file", "path", "md5")
MAX_FIELD_CHARS = 4096  # PATH_MAX on Linux; a longer path or id is not one


class ModelNotFoundError(CheckpointError):
    """A model named in the registry is neither at its local path nor in the Hugging Face cache."""


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registry entry; ``file`` is the file that must exist inside the folder (or the file itself)."""

    name: str
    description: str = ""
    hub: str | None = None
    subfolder: str | None = None
    file: str | None = None
    path: str | None = None
    md5: str | None = None

    def download_hint(self) -> str:
        """What the user should fetch, as a command line."""
        if self.hub:
            include = "/".join(p for p in (self.subfolder, self.file) if p)
            pattern = f"{self.subfolder}/*" if self.subfolder else (self.file or "")
            extra = f" --include '{pattern}'" if pattern and (self.subfolder or self.file.endswith(".pt")) else ""
            what = f" (needs {include})" if include else ""
            return f"huggingface-cli download {self.hub}{extra}{what}"
        return f"put the files at {self.path}" if self.path else "set a path for it in your models.yaml"


def user_registry_file() -> Path:
    """The user's override file (it need not exist)."""
    if os.environ.get("LYRA_MODELS"):
        return Path(os.environ["LYRA_MODELS"]).expanduser()
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config_home / "lyra-studio" / "models.yaml"


def _read_yaml(path: Path) -> dict[str, dict[str, Any]]:
    """The registry file's entries, checked: names and every field a string of sane length (or null)."""
    data = read_yaml(path, CheckpointError) or {}  # no aliases, shallow, small (lyra.safe_yaml)
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise CheckpointError(f"{path}: expected a mapping of model name -> {{hub, path, file, ...}}")
    for name, entry in data.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_FIELD_CHARS:
            raise CheckpointError(f"{path}: model names must be strings of 1 to {MAX_FIELD_CHARS} characters")
        unknown = sorted(str(k)[:40] for k in set(entry) - set(_FIELDS))
        if unknown:
            raise CheckpointError(f"{path}: model {name!r} has unknown fields {unknown[:8]}; known: {list(_FIELDS)}")
        for field, value in entry.items():
            if value is not None and (not isinstance(value, str) or len(value) > MAX_FIELD_CHARS or "\0" in value):
                found = f"{len(value)} characters" if isinstance(value, str) else f"a {type(value).__name__}"
                raise CheckpointError(f"{path}: model {name!r}: {field} must be a string of at most "
                                      f"{MAX_FIELD_CHARS} characters, found {found}")
    return data


def load_registry(user_file: str | os.PathLike | None = None) -> dict[str, ModelEntry]:
    """Defaults merged with the user's file (field by field); entries only in the user file are added."""
    merged = _read_yaml(DEFAULTS_FILE)
    user_path = Path(user_file) if user_file is not None else user_registry_file()
    if user_path.is_file():
        for name, entry in _read_yaml(user_path).items():
            merged[name] = {**merged.get(name, {}), **entry}
    return {name: ModelEntry(name=name, **{k: v for k, v in e.items() if v is not None}) for name, e in merged.items()}


def _hub_snapshot(entry: ModelEntry) -> Path | None:
    """The cached snapshot folder of ``entry.hub`` holding the needed file, or None (no network)."""
    if not entry.hub:
        return None
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        return None
    try:
        folder = Path(snapshot_download(entry.hub, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return folder


def _expected(base: Path, entry: ModelEntry) -> tuple[Path, Path]:
    """``(model path, file that must exist)`` for a base folder or file."""
    if base.is_file():
        return base, base
    model = base / entry.subfolder if entry.subfolder else base
    return model, (model / entry.file if entry.file else model)


def find_model(name: str, registry: dict[str, ModelEntry] | None = None) -> Path | None:
    """The local path of model ``name`` (a folder, or a file such as ``model.pt``), or None when missing."""
    registry = load_registry() if registry is None else registry
    if name not in registry:
        raise CheckpointError(f"unknown model {name!r}; the registry has {sorted(registry)}")
    entry = registry[name]
    candidates = []
    if entry.path:
        candidates.append(Path(entry.path).expanduser())
    snapshot = _hub_snapshot(entry)
    if snapshot is not None:
        candidates.append(snapshot)
    for base in candidates:
        if not base.exists():
            continue
        model, required = _expected(base, entry)
        if required.exists():
            return required if entry.file and required.suffix in (".pt", ".pth", ".bin", ".safetensors") else model
    return None


def resolve_model(name: str, registry: dict[str, ModelEntry] | None = None) -> Path:
    """Like :func:`find_model` but raises :class:`ModelNotFoundError` saying what to download."""
    registry = load_registry() if registry is None else registry
    found = find_model(name, registry)
    if found is None:
        entry = registry[name]
        where = f"not at {entry.path}" if entry.path else "no local path set"
        hub = f", not in the Hugging Face cache as {entry.hub}" if entry.hub else ""
        raise ModelNotFoundError(
            f"model {name!r} ({entry.description or 'no description'}) is missing: {where}{hub}. "
            f"Get it with: {entry.download_hint()}; or set `{name}: {{path: ...}}` in {user_registry_file()}"
        )
    return found


def md5_of(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_models(registry: dict[str, ModelEntry] | None = None, verify: bool = False) -> list[dict[str, Any]]:
    """One row per model: ``{name, found, path, hint, md5_ok}`` (``md5_ok`` None unless ``verify`` and a sum is known)."""
    registry = load_registry() if registry is None else registry
    rows = []
    for name, entry in registry.items():
        path = find_model(name, registry)
        md5_ok = None
        if verify and path is not None and entry.md5 and path.is_file():
            md5_ok = md5_of(path) == entry.md5
        rows.append(
            {
                "name": name,
                "found": path is not None,
                "path": str(path) if path else None,
                "hint": entry.download_hint(),
                "description": entry.description,
                "md5_ok": md5_ok,
            }
        )
    return rows

"""Load YAML configs into validated pydantic objects, with `--set a.b=c` overrides.

Why here and not in each job: every job shares the same rules. Unknown keys and
wrong types are errors that name the key and the file; YAML is read only with
``yaml.safe_load``; the resolved config (file + overrides + defaults) is what a
run saves beside its outputs, so a run can always be reproduced from its folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from medgan.errors import ConfigError, OutputPathError
from medgan.io.atomic import atomic_write_text


class StrictModel(BaseModel):
    """Base of every config schema: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


SchemaT = TypeVar("SchemaT", bound=BaseModel)


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping at the top level."""
    if not path.is_file():
        raise ConfigError("config file not found", path=path, fix="check the path (relative to where you run medgan)")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {err}", path=path, fix="fix the YAML syntax at the line shown") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"the top level must be a mapping of sections, found {type(loaded).__name__}",
            path=path,
            fix="write the config as `section: {key: value}` YAML",
        )
    return loaded


def _parse_override(override: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value (so `3` is an int, `[1,2]` a list)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} has no '='", fix="write overrides as --set section.key=value")
    dotted_key, raw_value = override.split("=", 1)
    key_path = [part.strip() for part in dotted_key.strip().split(".")]
    if not all(key_path):
        raise ConfigError(f"override {override!r} has an empty key", fix="write overrides as --set section.key=value")
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else ""
    except yaml.YAMLError:
        value = raw_value
    return key_path, value


def apply_overrides(raw_config: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``raw_config`` with each ``a.b=c`` override applied (creating sections as needed)."""
    merged: dict[str, Any] = json.loads(json.dumps(raw_config, default=str)) if raw_config else {}
    for override in overrides:
        key_path, value = _parse_override(override)
        node = merged
        for depth, key in enumerate(key_path[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                where = ".".join(key_path[: depth + 1])
                raise ConfigError(
                    f"override {override!r}: {where} is a value, not a section",
                    fix=f"set {where}=... directly or pick a key inside a section",
                )
            node = child
        node[key_path[-1]] = value
    return merged


def describe_validation_error(
    err: ValidationError,
    path: Path | None,
    *,
    prefix: str = "",
    unknown_key_hint: Callable[[str], str] | None = None,
) -> ConfigError:
    """Turn pydantic's error list into one ConfigError naming each bad key.

    ``prefix`` is prepended to every key (a section validated on its own, e.g.
    ``model``); ``unknown_key_hint(leaf_key)`` may add a sentence to an unknown key
    (e.g. which method that key belongs to).
    """
    lines = []
    for item in err.errors():
        parts = [prefix] if prefix else []
        parts += [str(part) for part in item["loc"]]
        key = ".".join(parts) or "(top level)"
        if item["type"] == "extra_forbidden":
            hint = unknown_key_hint(str(item["loc"][-1])) if unknown_key_hint and item["loc"] else ""
            lines.append(f"unknown key '{key}'" + (f" {hint}" if hint else ""))
        elif item["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            lines.append(f"key '{key}': {item['msg']} (got {item.get('input')!r})")
    return ConfigError(
        "invalid config:\n    " + "\n    ".join(lines),
        path=path,
        fix="correct or remove the keys named above; configs/ has a commented example of every key",
    )


def validate_config(raw_config: Mapping[str, Any], schema: type[SchemaT], *, path: Path | None = None) -> SchemaT:
    """Validate an already-loaded mapping against ``schema``, raising ConfigError that names the keys."""
    try:
        return schema.model_validate(dict(raw_config))
    except ValidationError as err:
        raise describe_validation_error(err, path) from None
    except ConfigError as err:  # raised by a schema's own checks, which do not know the file
        if err.path is not None or path is None:
            raise
        raise ConfigError(err.problem, path=path, fix=err.fix) from None


def load_config(path: str | Path, schema: type[SchemaT], overrides: Iterable[str] = ()) -> SchemaT:
    """Read ``path`` with ``yaml.safe_load``, apply ``--set`` overrides, validate into ``schema``."""
    path = Path(path)
    raw_config = apply_overrides(_read_yaml_mapping(path), overrides)
    return validate_config(raw_config, schema, path=path)


def config_to_yaml(config: BaseModel) -> str:
    """Serialise a validated config (with every default filled in) as YAML."""
    as_plain = json.loads(config.model_dump_json())
    return yaml.safe_dump(as_plain, sort_keys=False, default_flow_style=None)


def save_resolved_config(config: BaseModel, path: str | Path) -> Path:
    """Write the resolved config next to a run's outputs, atomically."""
    return atomic_write_text(path, config_to_yaml(config))


def config_sha256(config: BaseModel) -> str:
    """A stable hash of a config's values, used by job manifests to notice a changed config."""
    canonical = json.dumps(json.loads(config.model_dump_json()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def resolve_output_path(root: str | Path, relative: str | Path) -> Path:
    """Join ``relative`` under ``root`` and refuse anything that would land outside it.

    Output names can come from configs or from input file names; neither may use an
    absolute path or ``..`` to write outside the output root.
    """
    root_path = Path(root).resolve()
    relative = Path(relative)
    if relative.is_absolute():
        raise OutputPathError(
            f"output path {relative} is absolute", path=root_path, fix="give a path relative to the output folder"
        )
    candidate = (root_path / relative).resolve()
    if candidate != root_path and root_path not in candidate.parents:
        raise OutputPathError(
            f"output path {relative} escapes the output folder", path=root_path, fix="remove '..' from the path"
        )
    return candidate

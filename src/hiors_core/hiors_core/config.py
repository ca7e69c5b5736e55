"""Config loading: YAML files in ROS 2's `node_name: ros__parameters:` layout, with errors that name file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def node_parameters(config: dict, node: str, source: str = "<config>") -> dict[str, Any]:
    """The `ros__parameters` of one node (also under a `/**` wildcard or a namespaced key)."""
    params: dict[str, Any] = {}
    for key in ("/**", node, "/" + node):
        section = config.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or "ros__parameters" not in section:
            raise ConfigError(f"{source}: section {key!r} must contain 'ros__parameters'")
        params.update(section["ros__parameters"] or {})
    return params


def require(params: dict, key: str, source: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """A required key, with an error naming the file and the key if it is missing or of the wrong type."""
    if key not in params:
        raise ConfigError(f"{source}: missing required key {key!r}")
    value = params[key]
    if kind is not None and not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{source}: key {key!r} must be {want}, got {type(value).__name__} ({value!r})")
    return value

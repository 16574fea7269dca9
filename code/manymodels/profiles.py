"""Settings profiles: a YAML file of overrides applied on top of ``pipelines/`` as one unit.

A profile (e.g. ``pipelines/profiles/lean.yaml``, the cheap training settings for very many
partitions, docs/benchmarks.md) has the shape of the pipeline files but only the keys it
changes. Every step takes ``--profile FILE`` (repeatable); its leaves become ``--set`` overrides
in file order, before the command line's own ``--set``, so ``--set`` still wins. A list (e.g.
``training.ensemble.overrides``) replaces the configured list whole.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from manymodels.config import ConfigError

__all__ = ["profile_overrides"]


def profile_overrides(*paths: str | Path) -> list[str]:
    """The ``"section.key=value"`` overrides the profile files stand for, file after file
    (values as JSON, which ``--set`` parses as YAML).

    Raises:
        ConfigError: a file is missing, not YAML, not a mapping, or empty (naming the file).
    """
    return [item for path in paths for item in _overrides(Path(path))]


def _overrides(path: Path) -> list[str]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"profile {path} does not exist (see pipelines/profiles/)") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile {path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"profile {path}: the top level must be a mapping of sections")
    return [f"{key}={json.dumps(value)}" for key, value in _leaves(data, "")]


def _leaves(node: dict, prefix: str):
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{dotted}.")
        else:
            yield dotted, value

"""What each model registry platform allows, chosen from the registry URI: plain MLflow (sqlite,
file, a database or an MLflow server), the Databricks workspace registry (``databricks``),
Databricks Unity Catalog (``databricks-uc``) and Azure ML's MLflow registry (``azureml://``).

The steps need four things from a registry: a name per partition, aliases (``challenger`` ->
``champion`` -> ``previous``) or an equivalent, the ``name LIKE '<prefix>.%'`` search that lists
the project's models, and tag searches over model versions. :func:`capabilities` says which a
backend has, :func:`model_name` gives a valid name on each, and :func:`check` names what a
configured registry lacks before a step finds out halfway through a promotion.

Sources of the rules: MLflow's own stores (``mlflow.utils.validation._validate_model_name``;
``mlflow.store._unity_catalog.registry.rest_store``: no filter on ``search_registered_models``,
one ``name =`` or ``run_id =`` condition on ``search_model_versions``, no stages, no
``get_latest_versions``), the Unity Catalog identifier rules (three-part
``catalog.schema.model``; letters, digits and underscores; stored lower-case), and the Azure ML
"manage models with MLflow" and asset naming pages (no rename, no cross-workspace operations;
names of letters, digits, ``-``, ``_`` and ``.``). docs/forking.md has the table.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from manymodels.config import Settings

__all__ = [
    "BACKENDS",
    "Capabilities",
    "PlatformError",
    "backend_for",
    "capabilities",
    "check",
    "model_name",
    "model_names",
    "name_for",
    "registry_uri",
    "validate_model_name",
]

NEEDS = ("aliases", "name_like_search", "tag_search")


class PlatformError(ValueError):
    """The registry cannot do what was asked; the message says what to do instead."""


@dataclass(frozen=True)
class Capabilities:
    """What one registry backend supports."""

    backend: str
    aliases: bool  # set/get/delete_registered_model_alias, models:/name@alias
    alias_equivalent: str  # what stands in for aliases where there are none
    stages: bool  # the deprecated transition_model_version_stage
    name_like_search: bool  # search_registered_models("name LIKE 'prefix.%'")
    tag_search: bool  # search_model_versions("tags.`k` = 'v'")
    version_filters: tuple[str, ...]  # the conditions search_model_versions accepts
    three_part_names: bool
    name_pattern: str  # a valid name (without the catalog.schema. of Unity Catalog)
    max_name_length: int
    notes: str = ""


_MLFLOW_NAME = r"[^/:]*[^/:\s][^/:]*"  # MLflow refuses '/' and ':' and blank names
BACKENDS: dict[str, Capabilities] = {
    "mlflow": Capabilities(
        backend="mlflow",
        aliases=True,
        alias_equivalent="",
        stages=True,
        name_like_search=True,
        tag_search=True,
        version_filters=("name", "run_id", "tags", "source_path"),
        three_part_names=False,
        name_pattern=_MLFLOW_NAME,
        max_name_length=256,
        notes="everything the steps use; tested for real against a sqlite store",
    ),
    "databricks-uc": Capabilities(
        backend="databricks-uc",
        aliases=True,
        alias_equivalent="",
        stages=False,
        name_like_search=False,
        tag_search=False,
        version_filters=("name", "run_id"),
        three_part_names=True,
        name_pattern=r"[a-z0-9_]+",
        max_name_length=255,
        notes=(
            "names are catalog.schema.model; search_registered_models takes no filter and "
            "search_model_versions one `name =` or `run_id =` condition: list the project's "
            "models by the names the partition index gives, then filter tags client-side; "
            "every version needs a signature"
        ),
    ),
    "azureml": Capabilities(
        backend="azureml",
        aliases=False,
        alias_equivalent="a model version tag `alias` (`champion`, ...) looked up by name",
        stages=False,
        name_like_search=False,
        tag_search=False,
        version_filters=("name",),
        three_part_names=False,
        name_pattern=r"[A-Za-z0-9][A-Za-z0-9_.\-]*",
        max_name_length=255,
        notes=(
            "one registry per workspace (no cross-workspace copies through MLflow: download "
            "and re-register, as promote --to prod does); no model rename or delete of a whole "
            "model; search by exact name only"
        ),
    ),
}
# the Databricks workspace registry is plain MLflow's, run by Databricks
BACKENDS["databricks"] = dataclasses.replace(
    BACKENDS["mlflow"],
    backend="databricks",
    notes="the workspace registry (legacy; Databricks steers new projects to Unity Catalog)",
)
_SCHEMES = {
    "": "mlflow",
    "file": "mlflow",
    "sqlite": "mlflow",
    "postgresql": "mlflow",
    "mysql": "mlflow",
    "mssql": "mlflow",
    "http": "mlflow",
    "https": "mlflow",
    "databricks": "databricks",
    "databricks-uc": "databricks-uc",
    "azureml": "azureml",
}


def backend_for(uri: str) -> str:
    """The backend a registry URI selects (empty: the embedded sqlite store, plain MLflow).

    Raises:
        PlatformError: an unknown scheme (the message lists the known ones).
    """
    scheme = urlparse(uri).scheme.split("+", 1)[0].lower() if "://" in uri else uri.lower()
    if uri and "://" not in uri and scheme not in _SCHEMES:
        scheme = "file"  # a plain path is a file store
    if scheme not in _SCHEMES:
        raise PlatformError(
            f"registry URI {_no_secret(uri)!r}: unknown scheme {scheme!r}; "
            f"known: {', '.join(s for s in _SCHEMES if s)}"
        )
    return _SCHEMES[scheme]


def capabilities(uri: str) -> Capabilities:
    return BACKENDS[backend_for(uri)]


def validate_model_name(name: str, uri: str) -> str:
    """``name`` if it is valid on the backend of ``uri``.

    Raises:
        PlatformError: the name breaks the backend's rule (the message says which).
    """
    caps = capabilities(uri)
    leaf = name
    if caps.three_part_names:
        parts = name.split(".")
        if len(parts) != 3 or not all(parts):
            raise PlatformError(
                f"{caps.backend}: model name {name!r} must be catalog.schema.model "
                "(three parts, no other '.')"
            )
        leaf = parts[2]
        for part in parts[:2]:
            if not re.fullmatch(caps.name_pattern, part):
                raise PlatformError(f"{caps.backend}: {part!r} in {name!r} is not an identifier")
    if len(leaf) > caps.max_name_length or not re.fullmatch(caps.name_pattern, leaf):
        raise PlatformError(
            f"{caps.backend}: model name {name!r} is not valid there: it must match "
            f"{caps.name_pattern} and be at most {caps.max_name_length} characters"
        )
    return name


def model_name(prefix: str, partition: str, uri: str, catalog: str = "", schema: str = "") -> str:
    """The registered model name of a partition on the backend of ``uri``.

    Plain MLflow, Databricks workspace and Azure ML: ``<prefix>.<partition>``. Unity Catalog:
    ``<catalog>.<schema>.<prefix>__<partition>`` with every character outside ``[a-z0-9_]``
    turned into ``_`` and the partition's ``.`` into ``__`` (one ``.`` per level only).

    Raises:
        PlatformError: Unity Catalog without a catalog and schema, or a name that stays invalid.
    """
    caps = capabilities(uri)
    if not caps.three_part_names:
        return validate_model_name(f"{prefix}.{partition}", uri)
    if not (catalog and schema):
        raise PlatformError(
            "databricks-uc: model names are catalog.schema.model: set mlflow.catalog and "
            "mlflow.schema (e.g. --set mlflow.catalog=main --set mlflow.schema=forecasting)"
        )
    leaf = "__".join(_identifier(p) for p in [prefix, *partition.split(".")])
    return validate_model_name(f"{_identifier(catalog)}.{_identifier(schema)}.{leaf}", uri)


def model_names(
    prefix: str, partitions: Iterable[str], uri: str, catalog: str = "", schema: str = ""
) -> dict[str, str]:
    """``{partition: name}``; two partitions mapping to one name is an error, not an overwrite."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for pid in partitions:
        name = model_name(prefix, pid, uri, catalog, schema)
        if name in seen:
            raise PlatformError(
                f"partitions {seen[name]!r} and {pid!r} both map to model name {name!r} on "
                f"{backend_for(uri)}: rename one of their key values"
            )
        seen[name] = pid
        names[pid] = name
    return names


def check(uri: str, needs: Iterable[str] = NEEDS) -> list[str]:
    """What the backend of ``uri`` lacks of ``needs`` (e.g. ``aliases``), with the way round."""
    caps = capabilities(uri)
    ways = {
        "aliases": caps.alias_equivalent or "none: use another registry for promotion",
        "name_like_search": "list the models by the names of the partition index",
        "tag_search": "search by exact name, then filter the versions' tags client-side",
    }
    missing = []
    for need in needs:
        if need not in ways:
            raise PlatformError(f"unknown capability {need!r}; known: {', '.join(ways)}")
        if not getattr(caps, need):
            missing.append(f"{caps.backend}: no {need.replace('_', ' ')}; instead: {ways[need]}")
    return missing


def registry_uri(settings: Settings, env: str | None = None) -> str:
    """The registry URI an environment uses, in :func:`manymodels.registry.resolve_store`'s
    order (empty: the embedded store)."""
    env = env or settings.env
    configured = getattr(settings.mlflow, env)
    for kind in ("REGISTRY", "TRACKING"):
        found = os.environ.get(f"MANYMODELS_{env.upper()}_{kind}_URI", "")
        found = found or (os.environ.get(f"MLFLOW_{kind}_URI", "") if env == settings.env else "")
        found = found or getattr(configured, f"{kind.lower()}_uri")
        if found:
            return found
    return ""


def name_for(settings: Settings, partition: str) -> str:
    """The model name of ``partition`` in the settings' environment (the registry's hook)."""
    m = settings.mlflow
    uri = registry_uri(settings)
    return model_name(m.model_prefix, partition, uri, m.catalog, m.schema)


def _identifier(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def _no_secret(uri: str) -> str:
    return re.sub(r"//[^/@]+@", "//***@", uri)

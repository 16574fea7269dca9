"""Everything MLflow: stores, runs, logged models, registration, tags, aliases and look-ups.

Steps pass plain objects in and get plain values back. Where each environment's store lives:

1. ``MANYMODELS_<ENV>_TRACKING_URI`` (e.g. ``MANYMODELS_DEV_TRACKING_URI``), else
2. ``MLFLOW_TRACKING_URI`` for the environment the command runs in, else
3. ``mlflow.<env>.tracking_uri`` in the settings, else
4. the embedded default: ``sqlite:///<workdir>/mlflow/<env>/mlflow.db`` with artifacts beside it.

Registry URIs follow the same order (``..._REGISTRY_URI``) and default to the tracking URI.
``local=True`` skips 1-3, so nothing leaves the machine. Registered models are named
``<prefix>.<partition id>``; promotion uses aliases (``challenger`` -> ``champion``, the old
champion keeps ``previous``), never the deprecated stages.

A store that cannot answer (down, timeout, 401/403, 5xx) raises :class:`RegistryError` (steps
exit 3), never "none": only the registry's "model not found" / "alias not found" answers mean
no such version. URIs in its messages and tags go through :func:`redact_uri`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import math
import os
import re
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import requests
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from manymodels import platforms
from manymodels.config import ConfigError
from manymodels.errors import RegistryError
from manymodels.pyfunc import PackedModel
from manymodels.redact import redact
from manymodels.stores import Store, model_name, resolve_store

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "STORE_VARIABLES",
    "ROLLED_BACK",
    "RegistryError",
    "Store",
    "ALIAS_TAG",
    "alias_of",
    "alias_version",
    "capabilities_of",
    "aliased",
    "champions",
    "code_version",
    "copy_version",
    "alias_numbers",
    "all_aliases",
    "data_tags",
    "delete_alias",
    "drop_duplicates",
    "find_versions",
    "get_alias",
    "git_tags",
    "load",
    "load_version",
    "log_artifact",
    "data_inputs",
    "log_data_inputs",
    "log_metrics",
    "log_partition",
    "model_name",
    "save_pyfunc",
    "pip_requirements",
    "ping",
    "pipeline_run",
    "redact_uri",
    "register",
    "resolve_store",
    "run_tags",
    "set_alias",
    "tag_version",
    "versions_at",
    "versions_of",
]

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
# every environment variable that points a command at an MLflow store (see the module docstring)
STORE_VARIABLES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MANYMODELS_DEV_TRACKING_URI",
    "MANYMODELS_PROD_TRACKING_URI",
    "MANYMODELS_DEV_REGISTRY_URI",
    "MANYMODELS_PROD_REGISTRY_URI",
)
# version tag set by `manymodels rollback` on the version it took the champion alias from
ROLLED_BACK = "rolled_back"
# MLflow "models from code": the file is logged with each model instead of a pickled class.
_PYFUNC_CODE = importlib.util.find_spec("manymodels._pyfunc_code").origin


def git_tags() -> dict[str, str]:
    """Lineage tags every run carries: git sha and branch, and the CI workflow run if any."""

    def git(*args: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=5, check=False
            )
            if done.returncode == 0:
                return done.stdout.strip()
        return "unknown"

    return {
        "git_sha": os.environ.get("MANYMODELS_GIT_SHA", os.environ.get("GITHUB_SHA"))
        or git("rev-parse", "HEAD"),
        "git_branch": os.environ.get("GITHUB_REF_NAME") or git("rev-parse", "--abbrev-ref", "HEAD"),
        "workflow_run_id": os.environ.get("GITHUB_RUN_ID", "local"),
    }


@contextlib.contextmanager
def pipeline_run(
    store: Store, experiment: str, name: str, tags: dict[str, str], run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start (or, given ``run_id``, resume) the parent run of one pipeline run."""
    with _talking(store, f"starting the {name!r} run"):
        store.activate()
        experiment_id = store.experiment_id(experiment)
        active = mlflow.start_run(
            run_id=run_id, experiment_id=experiment_id, run_name=name, tags=tags
        )
    with active as run:
        yield run


def log_metrics(store: Store, run_id: str, metrics: dict[str, float]) -> None:
    client = store.client()
    with _talking(store, f"logging metrics to run {run_id}"):
        for key, value in metrics.items():
            client.log_metric(run_id, key, float(value))


def log_artifact(store: Store, run_id: str, path: str | Path, folder: str | None = None) -> None:
    with _talking(store, f"logging {Path(path).name} to run {run_id}"):
        store.client().log_artifact(run_id, str(path), folder)


def get_alias(store: Store, name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` carrying ``alias``, or None (no such model or alias).

    Raises:
        RegistryError: any other failure (server down, timeout, 403, 5xx): never "none".
    """
    if not capabilities_of(store).aliases:  # Azure ML: the version tag stands in
        return _tagged(store, name, alias)
    try:
        return store.client().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise _registry_error(store, f"looking up {name}@{alias}", exc) from exc
    except _REACHING as exc:  # requests' errors: anything but an answer
        raise _registry_error(store, f"looking up {name}@{alias}", exc) from exc


def set_alias(store: Store, name: str, alias: str, version: str | int) -> None:
    if not capabilities_of(store).aliases:
        return _set_tagged(store, name, alias, str(version))
    with _talking(store, f"setting {name}@{alias} -> v{version}"):
        _registry_api(store).set_registered_model_alias(name, alias, str(version))


def delete_alias(store: Store, name: str, alias: str) -> None:
    """Remove ``alias`` from ``name``; no error when it is not there."""
    if not capabilities_of(store).aliases:
        return _set_tagged(store, name, alias, None)
    try:
        _registry_api(store).delete_registered_model_alias(name, alias)
    except MlflowException as exc:
        if not _not_found(exc):
            raise _registry_error(store, f"deleting {name}@{alias}", exc) from exc
    except _REACHING as exc:
        raise _registry_error(store, f"deleting {name}@{alias}", exc) from exc


def find_versions(
    store: Store, *, names: Iterable[str] | None = None, **tags: str
) -> list[ModelVersion]:
    """Model versions whose tags equal ``tags`` (e.g. ``region="North Texas"``), newest first.

    ``names``: the models to look in where the backend has no tag search (Unity Catalog, Azure
    ML: searched one name at a time, tags filtered here); plain MLflow ignores it.
    """
    if tags and not capabilities_of(store).tag_search:
        return _versions_by_name(store, names, tags)
    clauses = " AND ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    with _talking(store, "searching model versions"):
        found = _all_pages(store.client().search_model_versions, clauses or None)
    return sorted(found, key=lambda v: (v.name, -int(v.version)))


def champions(
    store: Store, prefix: str, names: Iterable[str] | None = None
) -> dict[str, ModelVersion]:
    """``{model name: champion version}`` for every registered model named ``<prefix>.*``
    (``names``: see :func:`aliased`)."""
    return aliased(store, prefix, CHAMPION, names)


def aliased(
    store: Store, prefix: str, alias: str, names: Iterable[str] | None = None
) -> dict[str, ModelVersion]:
    """``{model name: version}`` carrying ``alias``, for every model named ``<prefix>.*``.

    ``names``: the model names (from the partitions a step knows) to look up one by one where
    the backend has no ``name LIKE`` search or no aliases (Unity Catalog, Azure ML; see
    :mod:`manymodels.platforms`); plain MLflow ignores it (every ``<prefix>.*`` model).

    Plain MLflow: one registered-model search (a page per 1,000 models; the results carry the
    aliases), then the aliased versions fetched by number (``version_number = N AND name IN
    (...)``): never every version of every model, whose count grows with each retrain.
    """
    caps = capabilities_of(store)
    if not (caps.name_like_search and caps.aliases):
        return _aliased_by_name(store, prefix, alias, names)
    numbers = alias_numbers(store, prefix, alias)
    with _talking(store, f"reading the {alias!r} versions of {prefix}.*"):
        return _versions_at(store.client(), numbers)


def alias_numbers(
    store: Store, prefix: str, alias: str, names: Iterable[str] | None = None
) -> dict[str, str]:
    """``{model name: version number}`` carrying ``alias`` (cheaper than :func:`aliased`: no
    version is read). ``names``: as in :func:`aliased`; on plain MLflow a few names (up to
    ``_FEW_NAMES``) are searched by name rather than listing the whole prefix."""
    return {n: held[alias] for n, held in all_aliases(store, prefix, (alias,), names).items()}


def all_aliases(
    store: Store, prefix: str, aliases: Iterable[str], names: Iterable[str] | None = None
) -> dict[str, dict[str, str]]:
    """``{model name: {alias: version number}}`` for the ``aliases`` (models holding none are
    left out): on plain MLflow one registered-model search answers every alias at once."""
    aliases = tuple(aliases)
    caps = capabilities_of(store)
    if not (caps.name_like_search and caps.aliases):
        out: dict[str, dict[str, str]] = {}
        for alias in aliases:
            for n, v in _aliased_by_name(store, prefix, alias, names).items():
                out.setdefault(n, {})[alias] = str(v.version)
        return out
    client = store.client()
    names = None if names is None else list(dict.fromkeys(names))
    with _talking(store, f"searching models {prefix}.* for {', '.join(aliases)}"):
        if names is None or len(names) > _FEW_NAMES:  # all of them: a page per 1,000 models
            models = _all_pages(client.search_registered_models, f"name LIKE '{prefix}.%'")
        else:  # a few (a retrain of some partitions): those only, whatever the registry holds
            models = [
                m
                for clause in _name_in(names)
                for m in _all_pages(client.search_registered_models, clause)
            ]
    out = {}
    for m in models:
        held = {a: str(v) for a, v in (m.aliases or {}).items() if a in aliases}
        if held:
            out[m.name] = held
    return out


# MLflow servers cap a search page at 1,000 results
_PAGE = 1000
# up to this many model names, look-ups search those names rather than the whole prefix
_FEW_NAMES = 200
# a search's filter travels in the URL of a GET: stay well under servers' request-line limits
_FILTER_CHARS = 1500


def _all_pages(search, filter_string: str | None) -> list:
    """Every result of an MLflow search, page by page."""
    results, token = [], None
    while True:
        page = search(filter_string, max_results=_PAGE, page_token=token)
        results += list(page)
        token = page.token
        if not token:
            return results


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "\\'") + "'"


def _name_in(names: Iterable[str], more: str = "") -> Iterator[str]:
    """``name IN (...)`` filters (each ``AND more``) covering ``names``, each short enough for
    a URL."""
    chunk: list[str] = []
    for name in dict.fromkeys(names):
        chunk.append(_quoted(name))
        if sum(len(q) + 1 for q in chunk) + len(more) > _FILTER_CHARS:
            yield f"name IN ({','.join(chunk)}){more}"
            chunk = []
    if chunk:
        yield f"name IN ({','.join(chunk)}){more}"


def versions_at(store: Store, numbers: dict[str, str]) -> dict[str, ModelVersion]:
    """``{name: ModelVersion}`` for ``{name: version number}`` (e.g. from
    :func:`alias_numbers`): a search per version number and chunk of names (plain MLflow)."""
    with _talking(store, f"reading {len(numbers)} model version(s) by number"):
        return _versions_at(store.client(), numbers)


def _versions_at(client: MlflowClient, numbers: dict[str, str]) -> dict[str, ModelVersion]:
    """``{name: ModelVersion}`` for ``{name: version number}``: one search per version number
    and chunk of names, not one call per model."""
    by_number: dict[str, list[str]] = {}
    for name, number in numbers.items():
        by_number.setdefault(str(number), []).append(name)
    found = {}
    for number, names in sorted(by_number.items()):
        for clause in _name_in(names, f" AND version_number = {int(number)}"):
            for v in _all_pages(client.search_model_versions, clause):
                found[v.name] = v
    return {name: found[name] for name in numbers if name in found}


@functools.cache
def pip_requirements() -> tuple[str, ...]:
    """The project's runtime dependencies pinned to the installed versions.

    Passed to ``log_model`` so MLflow does not infer requirements (a ~5 s subprocess per model).
    """
    pins = []
    for requirement in metadata.requires("manymodels") or []:
        if "extra ==" in requirement:
            continue
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{name}=={metadata.version(name)}")
    return tuple(pins)


def save_pyfunc(packed: PackedModel, path: str | Path, example: pd.DataFrame) -> Path:
    """Save ``packed`` as an MLflow pyfunc model folder (no tracking server involved).

    Parallel training workers call this, so the main process only uploads folders. The model is
    logged later with :func:`log_partition`. MLflow signatures have no categorical type, so the
    example is logged with plain values (the models accept both).
    """
    path = Path(path)
    example = example.assign(
        **{
            c: example[c].astype(example[c].cat.categories.dtype)
            for c in example.select_dtypes("category")
        }
    )
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        mlflow.pyfunc.save_model(
            str(path),
            python_model=_PYFUNC_CODE,
            artifacts={"packed": packed.save(f"{tmp}/packed.joblib")},
            pip_requirements=list(pip_requirements()),
            signature=infer_signature(example, packed.predict_frame(example)),
            input_example=example,
        )
        _keep_compact(Path(tmp), path)
    return path


def log_partition(
    store: Store,
    parent_run_id: str,
    partition: str,
    *,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    model_dirs: dict[str, Path] | None = None,
    artifacts_dir: Path | None = None,
    failed: bool = False,
    move: bool = False,
) -> dict[str, str]:
    """Log one partition as a run nested in ``parent_run_id``, with its saved pyfunc models.

    Models are uploaded as run artifacts (``save_pyfunc`` + upload costs a third of
    ``log_model``, which also reloads each model to re-validate its example) and registered later
    from their ``runs:/`` URI, a source every MLflow server accepts. Round trips per partition:
    ``create_run`` (with its tags), one ``log_batch`` (params and metrics), the artifact uploads
    and ``set_terminated``; the parent's experiment is looked up once per parent run. ``move``:
    the folders are the caller's to give away (staged files it removes once logged); into a
    local artifact store on the same file system they are moved, not copied (the same files,
    no second copy of each written; see :func:`_upload`).

    Returns:
        ``{"run_id": ..., "artifact_uri": ..., "<kind>_uri": "runs:/<run>/<kind>"}``, a URI per
        entry of ``model_dirs``.
    """
    from mlflow.entities import Metric, Param  # noqa: PLC0415
    from mlflow.store.artifact.artifact_repository_registry import (  # noqa: PLC0415
        get_artifact_repository,
    )
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID  # noqa: PLC0415
    from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri  # noqa: PLC0415

    client = store.client()
    with _talking(store, f"logging partition {partition}"):
        experiment_id = _experiment_of(store, parent_run_id)
        run = client.create_run(
            experiment_id,
            run_name=partition,
            tags=_context_tags()
            | {str(k): str(v) for k, v in tags.items()}
            | {MLFLOW_PARENT_RUN_ID: parent_run_id},
        )
        run_id = run.info.run_id
        out: dict[str, str] = {"run_id": run_id, "artifact_uri": run.info.artifact_uri}
        now = int(time.time() * 1000)
        batch = {
            "metrics": [
                Metric(k, float(v), now, 0) for k, v in metrics.items() if not math.isnan(v)
            ],
            "params": [Param(k, str(v)[:500]) for k, v in params.items()],
        }
        if batch["metrics"] or batch["params"]:  # a failed partition's run has neither
            client.log_batch(run_id, **batch)
        # the run's artifact store from the run just created, not a get_run per upload
        repo = get_artifact_repository(
            add_databricks_profile_info_to_artifact_uri(run.info.artifact_uri, store.tracking_uri),
            tracking_uri=store.tracking_uri,
        )
        if artifacts_dir is not None:
            _upload(repo, Path(artifacts_dir), None, move=move)
        for kind, folder in (model_dirs or {}).items():
            _upload(repo, Path(folder), kind, move=move)
            out[f"{kind}_uri"] = f"runs:/{run_id}/{kind}"
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
    return out


def _upload(repo, folder: Path, path: str | None, *, move: bool) -> None:
    """``repo.log_artifacts(folder, path)``; with ``move``, into a local artifact store where
    that folder is not there yet, ``folder`` is renamed into place instead: what the copy would
    make (MLflow copies file by file with their times), without writing the files again (at
    10,000 partitions, gigabytes). Another file system, or anything else the rename refuses:
    copied."""
    from mlflow.store.artifact.local_artifact_repo import (  # noqa: PLC0415
        LocalArtifactRepository,
    )

    if move and isinstance(repo, LocalArtifactRepository):
        target = Path(repo.artifact_dir, path) if path else Path(repo.artifact_dir)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                folder.rename(target)
                return
    repo.log_artifacts(str(folder), path)


@functools.cache
def _experiment_of(store: Store, run_id: str) -> str:
    """The experiment of run ``run_id`` (a run never moves: asked once per process)."""
    return store.client().get_run(run_id).info.experiment_id


@functools.cache
def _context_tags() -> dict[str, str]:
    """What ``mlflow.start_run`` adds to a run (user, source, git commit), resolved once."""
    from mlflow.tracking.context.registry import resolve_tags  # noqa: PLC0415

    return {k: v for k, v in resolve_tags().items() if k.startswith("mlflow.")}


def register(
    store: Store,
    model_uri: str,
    name: str,
    tags: dict[str, str],
    *,
    artifact_uri: str | None = None,
    exists: bool = False,
) -> ModelVersion:
    """A new version of registered model ``name`` from ``model_uri`` (``runs:/<run>/<path>``).

    ``artifact_uri``: the run's artifact root when the caller has it (the training hand-off
    does), which saves reading the run. ``exists``: the model is known to be registered (one
    round trip, not two; a model that is not there after all is created).
    """
    client = store.client()
    with _talking(store, f"registering a version of {name}"):
        run_id, _, path = model_uri.removeprefix("runs:/").partition("/")
        root = artifact_uri or client.get_run(run_id).info.artifact_uri
        kwargs = {
            "source": f"{root.rstrip('/')}/{path}",
            "run_id": run_id,
            "tags": {k: str(v) for k, v in tags.items()},
        }
        if capabilities_of(store).backend == "mlflow":  # READY when made: no polling read
            kwargs["await_creation_for"] = 0
        if exists:
            try:
                return client.create_model_version(name, **kwargs)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                    raise
        _ensure_model(client, name)
        return client.create_model_version(name, **kwargs)


def versions_of(store: Store, names: Iterable[str], **tags: str) -> list[ModelVersion]:
    """The versions of the models ``names`` whose tags equal ``tags``, newest first: searches
    of ``name IN (...)`` chunks (by name one at a time where the backend has no such search),
    so the cost follows ``names``, not the size of the registry."""
    names = list(dict.fromkeys(names))
    if not names:
        return []
    if by_name_only(store):
        return _versions_by_name(store, names, tags)
    more = "".join(f" AND tags.`{k}` = {_quoted(str(v))}" for k, v in tags.items())
    with _talking(store, f"searching versions of {len(names)} model(s)"):
        found = [
            v
            for clause in _name_in(names, more)
            for v in _all_pages(store.client().search_model_versions, clause)
        ]
    return sorted(found, key=lambda v: (v.name, -int(v.version)))


def drop_duplicates(store: Store, keep: ModelVersion, others: Iterable[ModelVersion]) -> list[str]:
    """Delete the versions of ``keep.name`` in ``others`` that duplicate ``keep`` (the same
    model from the same run: made by a request whose answer was lost, or retried by the
    client), except those an alias points at. Returns the version numbers deleted."""
    extra = [v for v in others if v.name == keep.name and str(v.version) != str(keep.version)]
    if not extra:
        return []
    client, deleted = store.client(), []
    with _talking(store, f"removing duplicate versions of {keep.name}"):
        held = set()
        if capabilities_of(store).aliases:
            held = {str(v) for v in (client.get_registered_model(keep.name).aliases or {}).values()}
        for v in extra:
            if str(v.version) in held or (v.tags or {}).get(ALIAS_TAG):
                continue
            client.delete_model_version(v.name, str(v.version))
            deleted.append(str(v.version))
    return deleted


def load(
    store: Store, name: str, alias: str | None = None, version: str | None = None
) -> PackedModel:
    """Load ``models:/name@alias`` (or ``/version``) and return its :class:`PackedModel`."""
    store.activate()
    uri = f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}"
    with (
        tempfile.TemporaryDirectory() as tmp,  # remote artifact stores leave temp folders
        _talking(store, f"loading {uri}"),
    ):
        model = mlflow.pyfunc.load_model(uri, dst_path=tmp)
    return model.unwrap_python_model().packed


def copy_version(
    source: Store,
    target: Store,
    name: str,
    version: str,
    experiment: str,
    *,
    experiment_id: str | None = None,
    src: ModelVersion | None = None,
    lineage_tags: dict[str, str] | None = None,
) -> ModelVersion:
    """Copy one registered version between registries (dev -> prod), keeping tags and lineage.

    For many copies the caller passes what it already has, saving round trips per copy:
    ``experiment_id`` (the target's id of ``experiment``), ``src`` (the source version as a
    search returned it) and ``lineage_tags`` (:func:`git_tags`).
    """
    with tempfile.TemporaryDirectory() as tmp:
        with _talking(source, f"reading {name} v{version}"):
            if src is None or str(src.version) != str(version):
                src = source.client().get_model_version(name, version)
            source.activate()  # models:/ URIs resolve against the active registry
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}", dst_path=tmp
            )
        lineage = {
            "source_env": source.env,
            "source_registry": _redact(source.registry_uri),
            "source_version": str(version),
            "source_run_id": src.run_id or "",
        }
        tags = {k: v for k, v in src.tags.items() if k not in (ROLLED_BACK, "rolled_back_at")}
        with _talking(target, f"copying {name} v{version}"):
            client = target.client()
            run = client.create_run(
                experiment_id or target.experiment_id(experiment),
                run_name=f"copy {name} v{version}",
                tags=lineage | (lineage_tags or git_tags()),
            )
            client.log_artifacts(run.info.run_id, local, "model")
            client.set_terminated(run.info.run_id)
            _ensure_model(client, name)
            return client.create_model_version(
                name,
                source=f"{run.info.artifact_uri}/model",
                run_id=run.info.run_id,
                tags=tags | lineage,
            )


def _redact(uri: str) -> str:
    """Drop credentials from a URI before it becomes a tag: no ``user:password@`` at all, and
    secret-looking query values masked."""
    return redact_uri(re.sub(r"//[^/@\s]+@", "//", uri))


# -- errors: "not there" is an answer, anything else is a RegistryError -------------------------

# what sqlite's and the HTTP server's registries answer for a model or alias that is not there
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
_REACHING = (MlflowException, requests.RequestException, ConnectionError, TimeoutError)


def redact_uri(text: str) -> str:
    """``text`` (a URI, or a message quoting URIs) with credentials masked: see
    :func:`manymodels.redact.redact`, the one implementation every step uses."""
    return redact(text)


def _not_found(exc: MlflowException) -> bool:
    """True when the registry answered "no such registered model / version / alias"."""
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(exc).lower()
    return exc.error_code in _MISSING and "not found" in message and "alias" in message


def _registry_error(store: Store, what: str, exc: BaseException) -> RegistryError:
    reason = redact_uri(" ".join(str(exc).split()))
    if len(reason) > 400:
        reason = reason[:400] + " ..."
    return RegistryError(
        f"MLflow registry error while {what} in the {store.env} store "
        f"{redact_uri(store.registry_uri)}: {type(exc).__name__}: {reason}. Check that the "
        f"server is up and reachable and that its credentials are valid, then re-run; nothing "
        f"was read as 'no champion'"
    )


@contextlib.contextmanager
def _talking(store: Store, what: str) -> Iterator[None]:
    """Turn a failure to talk to ``store`` into a :class:`RegistryError`."""
    try:
        yield
    except RegistryError:
        raise
    except _REACHING as exc:
        raise _registry_error(store, what, exc) from exc


def _ensure_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def tag_version(store: Store, name: str, version: str | int, tags: dict[str, str | None]) -> None:
    """Set (or, for a None value, delete) tags on one model version."""
    client = store.client()
    with _talking(store, f"tagging {name} v{version}"):
        for key, value in tags.items():
            if value is None:
                with contextlib.suppress(MlflowException):  # not there: fine
                    client.delete_model_version_tag(name, str(version), key)
            else:
                client.set_model_version_tag(name, str(version), key, value)


def run_tags(store: Store, run_id: str) -> dict[str, str]:
    """The tags of one run (e.g. the training run's ``config_hash``)."""
    with _talking(store, f"reading run {run_id}"):
        return dict(store.client().get_run(run_id).data.tags)


@functools.cache
def code_version() -> str:
    """A hash of the installed ``manymodels`` sources and the runtime dependency pins.

    Part of a version's identity beside ``git_sha``: uncommitted edits (the same sha, other
    code) or other library versions make a re-run "not identical".
    """
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update("\n".join(pip_requirements()).encode())
    return digest.hexdigest()[:12]


def log_data_inputs(store: Store, run_ids: list[str], index: dict) -> int:
    """Record the data a training used as MLflow dataset inputs of each run in ``run_ids``: the
    conditioned table (name ``demand``, digest = the data version, source = the data URI) and
    each raw source (its URI and content hash) from the partition ``index``; the first run
    also gets ``data/partitions.json``.

    Returns:
        How many dataset inputs each run got.
    """
    inputs = data_inputs(index)
    client = store.client()
    for run_id in run_ids:
        client.log_inputs(run_id, datasets=inputs)
    if run_ids:  # the partition membership (speed per product) and sources, with the run
        keep = ("data_version", "data_uri", "sources", "membership", "membership_changes")
        client.log_dict(run_ids[0], {k: index.get(k) for k in keep}, "data/partitions.json")
    return len(inputs)


def data_inputs(index: dict) -> list:
    """:func:`log_data_inputs`' MLflow ``DatasetInput`` entities for the partition ``index``."""
    from mlflow.data.dataset_source_registry import (  # noqa: PLC0415
        CodeDatasetSource,
        resolve_dataset_source,
    )
    from mlflow.data.meta_dataset import MetaDataset  # noqa: PLC0415
    from mlflow.entities import DatasetInput, InputTag  # noqa: PLC0415

    def source_of(uri: str):
        uri = _redact(uri).split("?", 1)[0]
        try:
            with warnings.catch_warnings():  # "can be interpreted in multiple ways": local files
                warnings.simplefilter("ignore", UserWarning)
                return resolve_dataset_source(uri)
        except Exception:  # noqa: BLE001 (a scheme MLflow has no source type for: abfs, gs...)
            return CodeDatasetSource({"uri": uri})

    data = [("demand", index.get("data_uri") or "conditioned", index["data_version"], "training")]
    data += [
        (name, s["uri"], s["sha256"], s.get("kind", "source"))
        for name, s in sorted(index.get("sources", {}).items())
    ]
    return [
        DatasetInput(
            MetaDataset(source_of(uri), name=name, digest=digest)._to_mlflow_entity(),
            [InputTag("mlflow.data.context", context)],
        )
        for name, uri, digest, context in data
    ]


def data_tags(index: dict) -> dict[str, str]:
    """Model-version tags naming the data: its version, location and each source's hash."""
    uri = _redact(index.get("data_uri", "")).split("?", 1)[0]  # no credentials, no SAS token
    tags = {"data_version": index["data_version"], "data_uri": uri}
    tags |= {f"data_source.{n}": s["sha256"] for n, s in index.get("sources", {}).items()}
    tags["data_mock"] = str(bool(index.get("mock", False))).lower()
    return tags


# -- the online API (manymodels.serve) ----------------------------------------------------------


def alias_version(store: Store, name: str, alias: str) -> str | None:
    """The version number ``alias`` points at, or None when the model or the alias is not there.

    Raises:
        RegistryError: the registry could not be asked (the online API answers 503, not 404).
    """
    found = alias_of(store, name, alias)
    return None if found is None else str(found.version)


def ping(store: Store) -> None:
    """One cheap registry call; raises when the registry cannot be reached."""
    with _talking(store, "checking the registry"):
        store.client().search_registered_models(max_results=1)


def load_version(store: Store, name: str, version: str) -> PackedModel:
    """Load one registered version's :class:`PackedModel` (what the online API calls).

    Reads only the model's ``packed`` artifact, the state its pyfunc wrapper loads too: a
    third of the time of ``mlflow.pyfunc.load_model``, which also parses MLmodel and checks the
    requirements on every load. A version without that artifact is loaded as a pyfunc. Sets no
    fluent-API state and writes no registered-model metadata, so threads may call it at once.
    """
    import joblib  # noqa: PLC0415

    source = store.client().get_model_version_download_uri(name, str(version)).rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{source}/artifacts/packed.joblib",
                dst_path=tmp,
                tracking_uri=store.tracking_uri,
            )
        except (MlflowException, OSError):  # not one of ours: the generic pyfunc way
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=tmp, tracking_uri=store.tracking_uri
            )
            return mlflow.pyfunc.load_model(local).unwrap_python_model().packed
        return joblib.load(path)


# --- monitoring (issue 10): version files, validation tags, pipeline runs ---


def read_version_json(store: Store, version: ModelVersion, filename: str) -> dict | None:
    """A JSON file stored in a registered version's model folder, or None when it has none.

    Raises:
        MlflowException: the store could not be read (never taken for "no file").
    """
    import json  # noqa: PLC0415

    store.activate()
    listed = mlflow.artifacts.list_artifacts(artifact_uri=version.source)
    if not any(Path(f.path).name == filename for f in listed):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{version.source}/{filename}", dst_path=tmp
        )
        return json.loads(Path(local).read_text())


def set_version_tags(store: Store, name: str, version: str | int, tags: dict[str, str]) -> None:
    """Set ``tags`` on one version: a round trip per tag (see :func:`_registry_api`)."""
    api = _registry_api(store)
    with _talking(store, f"tagging {name} v{version}"):
        for key, value in tags.items():
            api.set_model_version_tag(name, str(version), key, str(value))


def recent_runs(store: Store, experiment: str, names: tuple[str, ...], limit: int) -> list[dict]:
    """The latest ``limit`` parent runs named ``names`` (e.g. training, monitoring), as dicts."""
    client = store.client()
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    out = []
    for name in names:
        runs = client.search_runs(
            [found.experiment_id],
            f"attributes.run_name = '{name}'",
            max_results=limit,
            order_by=["attributes.start_time DESC"],
        )
        for r in runs:
            end = r.info.end_time
            out.append(
                {
                    "run_id": r.info.run_id,
                    "pipeline": name,
                    "status": r.info.status,
                    "start": pd.Timestamp(r.info.start_time, unit="ms", tz="UTC").isoformat(),
                    "seconds": (end - r.info.start_time) / 1000 if end else None,
                    "metrics": dict(r.data.metrics),
                    "tags": {k: v for k, v in r.data.tags.items() if not k.startswith("mlflow.")},
                }
            )
    return sorted(out, key=lambda r: r["start"])


# where a registry has no aliases (Azure ML), a version tag stands in: alias=champion
ALIAS_TAG = "alias"


def capabilities_of(store: Store) -> platforms.Capabilities:
    """What the store's registry supports; a scheme platforms does not know is plain MLflow."""
    try:
        return platforms.capabilities(store.registry_uri)
    except platforms.PlatformError:
        return platforms.BACKENDS["mlflow"]


def _need_names(store: Store, names: Iterable[str] | None, what: str) -> list[str]:
    if names is None:
        caps = capabilities_of(store)
        raise ConfigError(
            f"{caps.backend} registry {_redact(store.registry_uri)}: cannot {what} without "
            f"searching by pattern, which it does not support ({caps.notes}); the step must pass "
            "the model names of its partitions (run the partition step first)"
        )
    return list(dict.fromkeys(names))


def _by_name(store: Store, name: str) -> list[ModelVersion]:
    """Every version of ``name`` (an exact-name search: the one every backend accepts)."""
    quoted = name.replace("'", "\\'")
    with _talking(store, f"searching versions of {name}"):
        return _all_pages(store.client().search_model_versions, f"name = '{quoted}'")


def alias_of(store: Store, name: str, alias: str) -> ModelVersion | None:
    """:func:`get_alias`, which on a backend without aliases reads the version tag."""
    return get_alias(store, name, alias)


def _tagged(store: Store, name: str, alias: str) -> ModelVersion | None:
    """The newest version of ``name`` whose ``alias`` tag names ``alias`` (Azure ML)."""
    tagged = [
        v for v in _by_name(store, name)
        if alias in (v.tags or {}).get(ALIAS_TAG, "").split(",")
    ]  # fmt: skip
    return max(tagged, key=lambda v: int(v.version)) if tagged else None


def _aliased_by_name(
    store: Store, prefix: str, alias: str, names: Iterable[str] | None
) -> dict[str, ModelVersion]:
    found = {}
    for name in _need_names(store, names, f"list the models {prefix}.* carrying {alias!r}"):
        version = alias_of(store, name, alias)
        if version is not None:
            found[name] = version
    return found


def _versions_by_name(
    store: Store, names: Iterable[str] | None, tags: dict[str, str]
) -> list[ModelVersion]:
    found = [
        v for name in _need_names(store, names, "search model versions by tag")
        for v in _by_name(store, name)
        if all((v.tags or {}).get(k) == str(t) for k, t in tags.items())
    ]  # fmt: skip
    return sorted(found, key=lambda v: (v.name, -int(v.version)))


def by_name_only(store: Store) -> bool:
    """True when look-ups on ``store`` need the model names (no ``name LIKE``, alias or tag
    search there): a step then passes the names of the partitions it knows."""
    caps = capabilities_of(store)
    return not (caps.name_like_search and caps.aliases and caps.tag_search)


def _set_tagged(store: Store, name: str, alias: str, version: str | None) -> None:
    """Move (``version`` None: remove) the ``alias`` tag that stands in for an alias: the new
    version is tagged before the others are cleared, so a crash leaves two (the newest wins,
    a re-run clears the other), never none."""
    client = store.client()
    versions = sorted(_by_name(store, name), key=lambda v: str(v.version) != version)
    for v in versions:
        held = [a for a in (v.tags or {}).get(ALIAS_TAG, "").split(",") if a]
        keep = [a for a in held if a != alias] + ([alias] if str(v.version) == version else [])
        if sorted(keep) == sorted(held):
            continue
        with _talking(store, f"tagging {name} v{v.version} {ALIAS_TAG}={','.join(keep)}"):
            if keep:
                client.set_model_version_tag(name, str(v.version), ALIAS_TAG, ",".join(keep))
            else:
                client.delete_model_version_tag(name, str(v.version), ALIAS_TAG)


def save_pyfunc_like(
    template: str | Path,
    packed: PackedModel,
    path: str | Path,
    example: pd.DataFrame,
    shared: dict | None = None,
) -> Path:
    """What :func:`save_pyfunc` writes for ``packed``, made from ``template``: a folder it wrote
    for another model of the same kind and feature columns (a block's first partition).

    The environment files, the pyfunc code and the signature are the template's (the same for
    every partition trained with the same settings: the caller checks that the example's dtypes
    match); the packed model, the input example, the model uuid, size and time are this model's.
    It skips what makes :func:`save_pyfunc` cost ~0.1 CPU-s per model: requirement checks
    against the installed packages, signature inference and the input-example validation; the
    template's ``MLmodel`` is read once per process (:func:`_template_of`), and a model's is
    that text with its own uuid, size and time. ``shared``: a dict the caller passes with every
    model of the same ``example`` (a partition's ensemble and baseline): the example's files
    are written once and copied for the others.
    """
    import datetime as dt  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    template, path = Path(template), Path(path)
    like = _template_of(template)
    path.mkdir(parents=True)
    for name in like.files:
        _link(template / name, path / name)
    (path / "artifacts").mkdir()
    packed.save(str(path / "artifacts" / "packed.joblib"))
    model = like.model
    model.saved_input_example_info = None
    if shared:  # the same example saved for another model: the same files
        for name in shared["files"]:
            _link(shared["folder"] / name, path / name)
        model.saved_input_example_info = shared["info"]
    else:
        example = example.assign(
            **{
                c: example[c].astype(example[c].cat.categories.dtype)
                for c in example.select_dtypes("category")
            }
        )
        _save_example(model, example, path)
        if shared is not None:
            info = model.saved_input_example_info or {}
            files = [info[k] for k in ("artifact_path", "serving_input_path") if k in info]
            shared |= {"folder": path, "files": files, "info": info}
    own = {
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": str(dt.datetime.now(dt.UTC).replace(tzinfo=None)),
        "model_size_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
    }
    if model.saved_input_example_info == like.example_info:  # the template's text fits
        (path / "MLmodel").write_text(like.render(own))
        return path
    for key, value in own.items():  # another example format: MLflow writes it
        setattr(model, key, value)
    model.save(str(path / "MLmodel"))
    return path


def _registry_api(store: Store):
    """MLflow's registry client for ``store``: alias and version-tag calls as one round trip.

    ``MlflowClient`` reads the whole registered model (with every version of it) before each
    such call to refuse prompts (MLflow's prompt registry); a step's models are never prompts,
    and the read doubles the round trips of every alias move. Where an MLflow release lacks the
    registry client, the public client is used (the same calls, with the read).
    """
    client = store.client()
    get = getattr(client, "_get_registry_client", None)
    return get() if callable(get) else client


# --- batch scoring at scale (issue 12, engineer score-cost) ---


def load_packed(store: Store, name: str, version: str) -> PackedModel:
    """:func:`load_version` for batch scoring: a champion in a local artifact store is read in
    place (no copy); any other is downloaded as :func:`load_version` does.

    Raises:
        RegistryError: the version cannot be found or its artifacts cannot be read (the
            message names the model version and says what to do).
    """
    from urllib.parse import unquote, urlparse  # noqa: PLC0415

    import joblib  # noqa: PLC0415

    what = f"loading {name} v{version}"
    with _talking(store, what):
        source = store.client().get_model_version_download_uri(name, str(version)).rstrip("/")
    parsed = urlparse(source)
    packed = Path(unquote(parsed.path)) / "artifacts" / "packed.joblib"
    if parsed.scheme in ("", "file") and packed.is_file():
        return joblib.load(packed)
    try:
        return load_version(store, name, version)
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"{what}: its artifacts at {_redact(source)} cannot be read ({_first(exc)}); "
            "re-register the partition (train, register) or roll its champion back"
        ) from exc


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return redact(lines[0]) if lines else type(exc).__name__


def _keep_compact(saved: Path, model_dir: Path) -> None:
    """The compact scoring form :meth:`PackedModel.save` wrote beside ``packed.joblib`` in
    ``saved``, copied into the model folder's artifacts (not an MLflow artifact of the pyfunc:
    batch scoring reads it, :mod:`manymodels.scoring_compact`)."""
    import shutil  # noqa: PLC0415

    from manymodels.scoring_compact import COMPACT_FILE  # noqa: PLC0415

    if (saved / COMPACT_FILE).is_file():
        shutil.copy2(saved / COMPACT_FILE, model_dir / "artifacts" / COMPACT_FILE)


def load_scoring_form(store: Store, name: str, version: str, source: str = ""):
    """A champion as batch scoring uses it: its compact form (``compact.pkl``, written at save
    time, :mod:`manymodels.scoring_compact`) where it has one, no estimator unpickled; else its
    :class:`PackedModel` (:func:`load_packed`) compiled at load, or as it is when a member has
    no compact form. ``source``: the version's source from a registry listing; a local folder
    is read without asking the registry again.

    Raises:
        RegistryError: the version cannot be found or its artifacts cannot be read.
    """
    from urllib.parse import unquote, urlparse  # noqa: PLC0415

    from manymodels.scoring_compact import (  # noqa: PLC0415
        COMPACT_FILE,
        NotCompact,
        compile_packed,
        load_compact,
    )

    what = f"loading {name} v{version}"
    parsed = urlparse(source.rstrip("/"))
    folder = Path(unquote(parsed.path)) / "artifacts"
    if not (source and parsed.scheme in ("", "file") and folder.is_dir()):
        with _talking(store, what):
            source = store.client().get_model_version_download_uri(name, str(version))
        parsed = urlparse(source.rstrip("/"))
        folder = Path(unquote(parsed.path)) / "artifacts"
    compact = None
    if parsed.scheme in ("", "file"):
        compact = load_compact(folder / COMPACT_FILE)
    else:
        with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(MlflowException, OSError):
            compact = load_compact(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{source}/artifacts/{COMPACT_FILE}",
                    dst_path=tmp,
                    tracking_uri=store.tracking_uri,
                )
            )
    if compact is not None:
        return compact
    if parsed.scheme in ("", "file") and (folder / "packed.joblib").is_file():
        import joblib  # noqa: PLC0415

        packed = joblib.load(folder / "packed.joblib")
    else:
        packed = load_packed(store, name, version)
    try:
        return compile_packed(packed)
    except NotCompact:
        return packed


# --- the saving path at scale (issue 12, engineer save3) ---


@dataclass
class _Template:
    """A template model folder as :func:`save_pyfunc_like` uses it, read once per process."""

    model: object  # its mlflow.models.Model (re-used: every field a model sets is its own)
    files: tuple[str, ...]  # the files copied as they are (environment files, pyfunc code)
    example_info: dict | None  # its saved_input_example_info
    text: str  # its MLmodel as Model.save writes it

    def render(self, own: dict) -> str:
        """The MLmodel text with the top-level keys of ``own`` set to its values."""
        import yaml  # noqa: PLC0415

        text = self.text
        for key, value in own.items():
            line = yaml.safe_dump({key: value}, default_flow_style=False).rstrip("\n")
            text, n = re.subn(rf"^{key}: .*$", lambda _m, line=line: line, text, flags=re.M)
            if n != 1:
                raise ValueError(f"{self.text[:40]!r}...: no single top-level {key!r} line")
        return text


_TEMPLATES: dict[tuple[str, int], _Template] = {}


def _template_of(template: Path) -> _Template:
    """The :class:`_Template` of folder ``template`` (cached while its MLmodel is unchanged)."""
    from mlflow.models import Model  # noqa: PLC0415

    key = (str(template), (template / "MLmodel").stat().st_mtime_ns)
    if key not in _TEMPLATES:
        model = Model.load(str(template / "MLmodel"))
        skip = ("MLmodel", "artifacts", "input_example.json", "serving_input_example.json")
        files = tuple(
            sorted(
                item.name
                for item in template.iterdir()
                if item.is_file()
                and item.name not in skip
                and item.suffix in (".py", ".yaml", ".txt")
            )
        )
        info = model.saved_input_example_info
        placeholder = {"model_uuid": "x", "utc_time_created": "x", "model_size_bytes": 0}
        for k, v in placeholder.items():
            setattr(model, k, v)
        while len(_TEMPLATES) >= 16:  # a block's templates: a handful at a time
            del _TEMPLATES[next(iter(_TEMPLATES))]
        _TEMPLATES[key] = _Template(model, files, info, model.to_yaml())
    return _TEMPLATES[key]


def _link(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` (files written once and never changed: the
    same bytes without copying them), else a copy (another file system, no links)."""
    import shutil  # noqa: PLC0415

    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# the MLflow releases whose input-example files _save_example was checked to write as MLflow
# does (tests/unit/test_registry_save.py); any other writes them with MLflow's own code
_EXAMPLE_CHECKED = ("3.17.",)
_EXAMPLE_INFO = {
    "artifact_path": "input_example.json",
    "type": "dataframe",
    "pandas_orient": "split",
    "serving_input_path": "serving_input_example.json",
}


def _save_example(model, example: pd.DataFrame, path: Path) -> None:
    """What ``mlflow.models.utils._save_example`` writes for a frame of plain columns (numbers,
    booleans, text, dates; none missing) and sets on ``model``, without its pandas round trips (a
    ``where``/``to_dict`` of the frame, two deep copies: ~6 ms per two-row example). Any other
    frame, or another MLflow release, is saved by MLflow."""
    import json  # noqa: PLC0415

    from mlflow.models.utils import _save_example as mlflow_save_example  # noqa: PLC0415

    rows = _example_rows(example) if mlflow.__version__.startswith(_EXAMPLE_CHECKED) else None
    if rows is None:
        mlflow_save_example(model, example, str(path))
        return
    split = {"columns": list(example.columns), "data": rows}
    (path / _EXAMPLE_INFO["artifact_path"]).write_text(json.dumps(split))
    serving = json.dumps({"dataframe_split": split}, indent=2)
    (path / _EXAMPLE_INFO["serving_input_path"]).write_text(serving)
    model.saved_input_example_info = dict(_EXAMPLE_INFO)


def _example_rows(example: pd.DataFrame) -> list[list] | None:
    """The rows MLflow writes for ``example`` (``to_dict(orient="split")``, dates in ISO
    format), or None where a column is not plain or has missing values (how MLflow writes those
    depends on the pandas release)."""
    names = list(example.columns)
    if not names or len(set(names)) < len(names) or any(type(c) is not str for c in names):
        return None
    columns = []
    for name, kind in zip(names, example.dtypes.tolist(), strict=True):
        values = example[name].tolist()  # a few rows: checked value by value
        if isinstance(kind, np.dtype) and kind.kind in "fib":
            plain = all(v == v for v in values)  # noqa: PLR0124 (NaN)
        elif isinstance(kind, np.dtype) and kind.kind == "M":  # tz-naive dates
            plain = not any(v is pd.NaT for v in values)
            values = [v.isoformat() for v in values] if plain else values
        else:
            plain = pd.api.types.is_string_dtype(kind) and all(type(v) is str for v in values)
        if not plain:
            return None
        columns.append(values)
    return [list(row) for row in zip(*columns, strict=True)]

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
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
import os
import re
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from manymodels.config import Settings
from manymodels.pyfunc import PackedModel

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS",
    "Store",
    "champions",
    "copy_version",
    "delete_alias",
    "find_versions",
    "get_alias",
    "git_tags",
    "load",
    "log_artifact",
    "log_metrics",
    "log_partition",
    "model_name",
    "save_pyfunc",
    "pip_requirements",
    "pipeline_run",
    "register",
    "resolve_store",
    "set_alias",
]

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
# MLflow "models from code": the file is logged with each model instead of a pickled class.
_PYFUNC_CODE = importlib.util.find_spec("manymodels._pyfunc_code").origin


@dataclass(frozen=True)
class Store:
    """One environment's MLflow tracking store and model registry."""

    env: str
    tracking_uri: str
    registry_uri: str
    artifact_root: str | None = None  # set for the embedded store only

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def activate(self) -> MlflowClient:
        """Point MLflow's fluent API (``mlflow.start_run``, ``log_model``) at this store."""
        # MLflow also exports the URIs as environment variables; put the user's back, or the
        # next resolve_store would take this store for what MLFLOW_TRACKING_URI configures.
        saved = {var: os.environ.get(var) for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        return self.client()

    def experiment_id(self, name: str) -> str:
        client = self.client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root}/{name}" if self.artifact_root else None
        return client.create_experiment(name, artifact_location=location)


def resolve_store(settings: Settings, env: str | None = None, *, local: bool = False) -> Store:
    """The store of ``env`` (default: the settings' env); see the module docstring for the order."""
    env = env or settings.env
    configured = getattr(settings.mlflow, env)
    tracking = "" if local else _uri(settings, env, "TRACKING", configured.tracking_uri)
    registry = "" if local else _uri(settings, env, "REGISTRY", configured.registry_uri)
    if tracking:
        return Store(env, tracking, registry or tracking)
    folder = settings.path("mlflow", env).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    return Store(env, uri, registry or uri, (folder / "artifacts").as_uri())


def _uri(settings: Settings, env: str, kind: str, configured: str) -> str:
    specific = os.environ.get(f"MANYMODELS_{env.upper()}_{kind}_URI", "")
    generic = os.environ.get(f"MLFLOW_{kind}_URI", "") if env == settings.env else ""
    return specific or generic or configured


def model_name(settings: Settings, partition: str) -> str:
    return f"{settings.mlflow.model_prefix}.{partition}"


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
    store.activate()
    experiment_id = store.experiment_id(experiment)
    with mlflow.start_run(
        run_id=run_id, experiment_id=experiment_id, run_name=name, tags=tags
    ) as run:
        yield run


def log_metrics(store: Store, run_id: str, metrics: dict[str, float]) -> None:
    client = store.client()
    for key, value in metrics.items():
        client.log_metric(run_id, key, float(value))


def log_artifact(store: Store, run_id: str, path: str | Path, folder: str | None = None) -> None:
    store.client().log_artifact(run_id, str(path), folder)


def get_alias(store: Store, name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` carrying ``alias``, or None (no such model or alias)."""
    try:
        return store.client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_alias(store: Store, name: str, alias: str, version: str | int) -> None:
    store.client().set_registered_model_alias(name, alias, str(version))


def delete_alias(store: Store, name: str, alias: str) -> None:
    with contextlib.suppress(MlflowException):
        store.client().delete_registered_model_alias(name, alias)


def find_versions(store: Store, **tags: str) -> list[ModelVersion]:
    """Model versions whose tags equal ``tags`` (e.g. ``region="North Texas"``), newest first."""
    clauses = " AND ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = _all_pages(store.client().search_model_versions, clauses or None)
    return sorted(found, key=lambda v: (v.name, -int(v.version)))


def champions(store: Store, prefix: str) -> dict[str, ModelVersion]:
    """``{model name: champion version}`` for every registered model named ``<prefix>.*``."""
    # two searches in all, not a look-up per model (search results carry no version aliases)
    client = store.client()
    models = _all_pages(client.search_registered_models, f"name LIKE '{prefix}.%'")
    wanted = {(m.name, str(m.aliases[CHAMPION])) for m in models if CHAMPION in (m.aliases or {})}
    versions = _all_pages(client.search_model_versions, f"name LIKE '{prefix}.%'") if wanted else []
    return {v.name: v for v in versions if (v.name, str(v.version)) in wanted}


def _all_pages(search, filter_string: str | None) -> list:
    """Every result of an MLflow search, page by page (servers cap a page at 1,000)."""
    results, token = [], None
    while True:
        page = search(filter_string, max_results=1000, page_token=token)
        results += list(page)
        token = page.token
        if not token:
            return results


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
            signature=infer_signature(example, packed.predict(example)),
            input_example=example,
        )
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
) -> dict[str, str]:
    """Log one partition as a run nested in ``parent_run_id``, with its saved pyfunc models.

    Models are uploaded as run artifacts (``save_pyfunc`` + upload costs a third of
    ``log_model``, which also reloads each model to re-validate its example) and registered later
    from their ``runs:/`` URI, a source every MLflow server accepts.

    Returns:
        ``{"run_id": ..., "<kind>_uri": "runs:/<run>/<kind>"}``, a URI per entry of ``model_dirs``.
    """
    store.activate()
    experiment_id = store.client().get_run(parent_run_id).info.experiment_id
    out: dict[str, str] = {}
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=partition,
        nested=True,
        parent_run_id=parent_run_id,
        tags=tags,
    ) as run:
        out["run_id"] = run.info.run_id
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if not math.isnan(v)})
        if artifacts_dir is not None:
            mlflow.log_artifacts(str(artifacts_dir))
        for kind, folder in (model_dirs or {}).items():
            mlflow.log_artifacts(str(folder), kind)
            out[f"{kind}_uri"] = f"runs:/{run.info.run_id}/{kind}"
        if failed:
            mlflow.end_run("FAILED")
    return out


def register(store: Store, model_uri: str, name: str, tags: dict[str, str]) -> ModelVersion:
    """A new version of registered model ``name`` from ``model_uri`` (``runs:/<run>/<path>``)."""
    client = store.client()
    with contextlib.suppress(MlflowException):  # it exists already
        client.create_registered_model(name)
    run_id, _, path = model_uri.removeprefix("runs:/").partition("/")
    source = f"{client.get_run(run_id).info.artifact_uri}/{path}"
    return client.create_model_version(
        name, source=source, run_id=run_id, tags={k: str(v) for k, v in tags.items()}
    )


def load(
    store: Store, name: str, alias: str | None = None, version: str | None = None
) -> PackedModel:
    """Load ``models:/name@alias`` (or ``/version``) and return its :class:`PackedModel`."""
    store.activate()
    uri = f"models:/{name}@{alias}" if alias else f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory() as tmp:  # remote artifact stores leave temp folders
        model = mlflow.pyfunc.load_model(uri, dst_path=tmp)
    return model.unwrap_python_model().packed


def copy_version(
    source: Store, target: Store, name: str, version: str, experiment: str
) -> ModelVersion:
    """Copy one registered version between registries (dev -> prod), keeping tags and lineage."""
    src = source.client().get_model_version(name, version)
    lineage = {
        "source_env": source.env,
        "source_registry": _redact(source.registry_uri),
        "source_version": str(version),
        "source_run_id": src.run_id or "",
    }
    with tempfile.TemporaryDirectory() as tmp:
        source.activate()  # models:/ URIs resolve against the active registry
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=tmp
        )
        client = target.client()
        run = client.create_run(
            target.experiment_id(experiment),
            run_name=f"copy {name} v{version}",
            tags=lineage | git_tags(),
        )
        client.log_artifacts(run.info.run_id, local, "model")
        client.set_terminated(run.info.run_id)
    with contextlib.suppress(MlflowException):  # already exists
        client.create_registered_model(name)
    return client.create_model_version(
        name,
        source=f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags=src.tags | lineage,
    )


def _redact(uri: str) -> str:
    """Drop credentials from a URI before it becomes a tag."""
    return re.sub(r"//[^/@]+@", "//", uri)

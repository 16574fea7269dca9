"""Real HTTP against a real MLflow sqlite registry: baseline models of the committed sample's
partitions are fitted, logged and registered (aliased ``champion``) once per session, batch
scoring's snapshot writer writes the features, and each test starts uvicorn on a loopback
port (``in_background``)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path

import pytest

from manymodels import registry
from manymodels.config import load_settings
from manymodels.data.partition import split_partitions
from manymodels.features import build_features, feature_columns
from manymodels.models import HistoricalAverageBaseline
from manymodels.pyfunc import PackedModel
from manymodels.serve.app import create_app, in_background
from manymodels.serve.snapshot import write_snapshot
from manymodels.steps.serve import build_service
from manymodels.training import feature_settings


def fit_baseline(frame, pid: str, settings, scale: float = 1.0) -> PackedModel:
    """A fitted historical-average model of one partition (``scale`` makes versions differ)."""
    fs = feature_settings(settings)
    categorical, numeric = feature_columns(**fs)
    columns = ["week", *categorical, *numeric]
    known = build_features(frame, **fs).dropna(subset=["units"])
    model = HistoricalAverageBaseline().fit(known[columns], known["units"] * scale)
    return PackedModel(model, "baseline", pid, fs, columns)


def register_version(store, settings, packed, folder: Path, *, run_id: str, example) -> str:
    """Save, log and register one model version; returns its version number."""
    path = registry.save_pyfunc(packed, folder, example)
    logged = registry.log_partition(
        store, run_id, packed.partition, params={}, metrics={}, tags={},
        model_dirs={"baseline": path},
    )  # fmt: skip
    name = registry.model_name(settings, packed.partition)
    tags = {"partition": packed.partition, "model_kind": "baseline"}
    return str(registry.register(store, logged["baseline_uri"], name, tags).version)


class Registry:
    """The session's registry: settings, store, the sample's partitions; adds versions."""

    def __init__(self, root: Path, table) -> None:
        self.root = root
        self.settings = load_settings("pipelines", "dev", [f"project.workdir={root / 'work'}"])
        self.store = registry.resolve_store(self.settings, local=True)
        self.parts = split_partitions(table, self.settings.partition.keys)
        self.snapshot = root / "snapshot.parquet"
        write_snapshot(self.parts, self.snapshot, self.settings.serving.history_weeks)
        with registry.pipeline_run(self.store, "serve-tests", "fixture", {}) as run:
            self.run_id = run.info.run_id
        self._n = 0
        self.versions = {pid: self.add(pid, alias="champion") for pid in self.parts}

    def name(self, pid: str) -> str:
        return registry.model_name(self.settings, pid)

    def add(self, pid: str, scale: float = 1.0, alias: str | None = None) -> str:
        self._n += 1
        frame = self.parts[pid]
        packed = fit_baseline(frame, pid, self.settings, scale)
        example = build_features(frame, **packed.features)[packed.columns].head(2)
        version = register_version(
            self.store,
            self.settings,
            packed,
            self.root / f"m{self._n}",
            run_id=self.run_id,
            example=example,
        )
        if alias:
            registry.set_alias(self.store, self.name(pid), alias, version)
        return version

    def fit(self, frame, pid: str, scale: float = 1.0) -> PackedModel:
        return fit_baseline(frame, pid, self.settings, scale)

    def publish(self, packed: PackedModel, frame, alias: str) -> str:
        """Register any packed model of ``frame``'s partition and point ``alias`` at it."""
        self._n += 1
        example = build_features(frame, **packed.features)[packed.columns].head(2)
        version = register_version(
            self.store, self.settings, packed, self.root / f"m{self._n}",
            run_id=self.run_id, example=example,
        )  # fmt: skip
        registry.set_alias(self.store, self.name(packed.partition), alias, version)
        return version


@pytest.fixture(scope="session")
def reg(tmp_path_factory, _conditioned) -> Registry:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        return Registry(tmp_path_factory.mktemp("serve"), _conditioned[0].copy())


@pytest.fixture
def serve(reg):
    """``serve(**serving settings)`` -> (base URL, service): a fresh server per call."""
    with contextlib.ExitStack() as stack:

        def start(store=None, **serving):
            serving.setdefault("snapshot", str(reg.snapshot))
            settings = replace(reg.settings, serving=replace(reg.settings.serving, **serving))
            service = build_service(settings, store or reg.store)
            url = stack.enter_context(in_background(create_app(service)))
            return url, service

        yield start

"""``benchmarks/mlflow_scale.py`` at a tiny size against a real PostgreSQL-backed ``mlflow
server``, so the script cannot rot: the bulk-seeded models are what the steps register (the
script checks one through the server), and every stage's operations are measured. Skipped where
PostgreSQL (``make postgres``) is absent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from manymodels import localservers

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mlflow_scale.py"


def _bench():
    spec = importlib.util.spec_from_file_location("mlflow_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_against_a_postgresql_backed_server(tmp_path, monkeypatch):
    if missing := localservers.postgres_missing():
        pytest.skip(missing)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    out = tmp_path / "mlflow_scale.json"
    argv = ["--stages", "4", "12", "--backends", "postgresql", "--new", "2", "--retrains", "2"]
    argv += ["--uploads", "2", "--lookups", "3", "--workers", "1", "--out", str(out)]
    assert _bench().main(argv) == 0
    report = json.loads(out.read_text())
    pg = report["backends"]["postgresql"]
    assert pg["backend_store"] == "postgresql+psycopg"
    first, last = pg["stages"]
    assert [first["registered_models"], last["registered_models"]] == [4, 12]
    # 4: the template + 1 seeded + 2 new; 12: 6 seeded + 2 new, 2 retrained
    assert [first["seeded_this_stage"], last["seeded_this_stage"]] == [1, 6]
    assert last["seed_rows"] > 6 * 5  # a run, its params, metrics, tags; a model, version, ...
    assert (last["new_this_stage"], last["retrained_this_stage"]) == (2, 2)
    assert last["step_level"]["promoted"] == 4  # the 2 new and the 2 retrained challengers
    for op in (
        "register (new model)",
        "register (new version of a known model)",
        "champion look-up (get_model_version_by_alias)",
    ):
        assert last["ops"][op]["n"] > 0 and last["ops"][op]["p95_ms"] >= last["ops"][op]["p50_ms"]
    assert len(last["load_average_1m"]) == 2

"""``benchmarks/mlflow_scale.py`` at a tiny size against a real PostgreSQL-backed ``mlflow
server``, so the script cannot rot. Skipped where PostgreSQL (``make postgres``) is absent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="the PostgreSQL driver (psycopg) is not installed")
pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "mlflow_scale.py"


def _bench():
    spec = importlib.util.spec_from_file_location("mlflow_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_against_a_postgresql_backed_server(tmp_path, monkeypatch):
    bench = _bench()
    if not (bench.postgres_bin("initdb") and bench.postgres_bin("pg_ctl")):
        pytest.skip("PostgreSQL is not installed (make postgres / apt-get install postgresql)")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    out = tmp_path / "mlflow_scale.json"
    argv = ["--stages", "4", "8", "--backends", "postgresql", "--uploads", "2", "--lookups", "3"]
    assert bench.main([*argv, "--workers", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    pg = report["backends"]["postgresql"]
    assert pg["backend_store"] == "postgresql+psycopg"
    assert [s["registered_models"] for s in pg["stages"]] == [4, 8]
    last = pg["stages"][-1]
    assert last["step_level"]["promoted"] == 4  # the 4 models this stage added
    for op in ("register (create_model_version)", "champion look-up (get_model_version_by_alias)"):
        assert last["ops"][op]["n"] > 0 and last["ops"][op]["p95_ms"] >= last["ops"][op]["p50_ms"]

"""No secret in any file or log line of a whole training -> promotion -> scoring run.

The dev and prod stores are the embedded SQLite files, reached through URIs that carry a token
and a password (SQLite ignores them), and the warehouse URL carries a password; every file the
run wrote and every captured log line is searched for them.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

TOKEN = "tok-8c7b6a5f"
PASSWORD = "pw-hunter2-x"


def _uri(db: Path) -> str:
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///file:{db}?uri=true&token={TOKEN}&password={PASSWORD}"


def test_no_secret_in_any_output_of_the_pipelines(workspace, monkeypatch, caplog):
    monkeypatch.setenv("MANYMODELS_ALLOW_MOCK", "true")  # the sample is mock data
    workspace.plots = True  # every file a run writes is searched, residual plots included
    caplog.set_level(logging.DEBUG)
    for env in ("dev", "prod"):
        uri = _uri(workspace.work / "mlflow" / env / "mlflow.db")
        monkeypatch.setenv(f"MANYMODELS_{env.upper()}_TRACKING_URI", uri)
        # a URI store keeps artifacts in ./mlruns unless its experiment says otherwise
        artifacts = (workspace.work / "mlflow" / env / "artifacts").as_uri()
        MlflowClient(uri).create_experiment("manymodels", artifact_location=artifacts)
    # 2 partitions (a fast and a slow one: an ensemble and a baseline champion) write every kind
    # of file and log line the 8 would
    workspace.train_pipeline("--sample", "2")
    assert workspace.run("promote", "--to", "prod", "--env", "prod") == 0
    warehouse = f"postgresql+psycopg://scorer:{PASSWORD}@127.0.0.1:1/wh?sslpassword={PASSWORD}"
    today = str(dt.date.today())
    code = workspace.run(
        "score", "--env", "prod", "--as-of", today, "--set", f"scoring.sql_url={warehouse}"
    )
    assert code == 1  # nothing listens on the warehouse port: reported, predictions kept
    assert "SQL predictions not written (the parquet output is)" in caplog.text
    written = [p for p in workspace.root.rglob("*") if p.is_file()]
    assert any(p.name == "predictions.parquet" for p in written)
    assert any(p.name == "registration.json" for p in written)
    for path in written:
        assert TOKEN not in str(path) and PASSWORD not in str(path)
        data = path.read_bytes()
        assert TOKEN.encode() not in data, path
        assert PASSWORD.encode() not in data, path
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text
    assert "token=***" in caplog.text  # the URIs are still there, readable

"""Monitoring on real trained models, and the stale trap closed (issue 10).

The sample is trained and promoted; scoring runs on a copy of the data whose last four weeks are
not sold yet; then the full data arrive and ``monitor`` compares what was served with what sold,
against the drift profiles the training workers stored in each model. Then the champions are
made old, a retrain whose challengers all lose keeps them, and scoring still serves every one.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest

from manymodels import registry
from manymodels.config import load_settings

pytestmark = pytest.mark.slow

TODAY = dt.date.today()
OLD = (dt.datetime.now(dt.UTC) - dt.timedelta(days=90)).isoformat(timespec="seconds")


def _prod(ws, step, *extra):
    return ws.run(step, "--env", "prod", *extra)


def _cut(ws) -> str:
    """The conditioned data as it was four weeks earlier: the last four weeks not sold yet."""
    full, cut = ws.work / "conditioned", ws.work / "conditioned-earlier"
    shutil.copytree(full, cut, dirs_exist_ok=True)
    table = pd.read_parquet(cut / "demand.parquet")
    last = table.loc[table["units"].notna(), "week"].max()
    table.loc[table["week"] > last - pd.Timedelta(weeks=4), "units"] = float("nan")
    table.to_parquet(cut / "demand.parquet", index=False)
    return str(cut)


def test_monitor_compares_served_forecasts_with_actuals_and_logs_the_dashboard(trained):
    assert _prod(trained, "promote", "--to", "prod") == 0
    assert _prod(trained, "score", "--data", _cut(trained), "--as-of", str(TODAY)) == 0
    assert _prod(trained, "monitor", "--as-of", str(TODAY)) == 0
    report = json.loads((trained.work / "monitoring" / "monitoring.json").read_text())
    assert report["overview"]["partitions"] == 8
    assert report["overview"]["forecasts_with_actuals"] == 4 * 24  # 4 weeks x 24 series
    assert {r["partition"] for r in report["weekly"]} == set(report["partitions"])
    for pid, rows in report["drift"].items():  # every model carries its training profile
        assert rows and all(r["status"] != "no profile" for r in rows), pid
        assert {"tmax_f", "store_id"} <= {r["feature"] for r in rows}
    assert all(r["status"] == "fresh" for r in report["staleness"])
    assert "training" in {r["pipeline"] for r in report["runs"]}  # dev training runs, in prod
    settings = load_settings("pipelines", "prod", [f"project.workdir={trained.work}"])
    store = registry.resolve_store(settings)
    run = registry.recent_runs(store, "manymodels", ("monitoring",), 1)[0]
    listed = {f.path for f in store.client().list_artifacts(run["run_id"], "monitoring")}
    assert "monitoring/dashboard.html" in listed and "monitoring/monitoring.json" in listed


def test_a_champion_the_gate_keeps_is_revalidated_and_keeps_serving(trained):
    settings = load_settings("pipelines", "dev", [f"project.workdir={trained.work}"])
    dev = registry.resolve_store(settings)
    prefix = settings.mlflow.model_prefix
    assert _prod(trained, "promote", "--to", "prod") == 0
    prod = registry.resolve_store(settings, "prod")
    for store in (dev, prod):  # the champions were trained 90 days ago
        for name, version in registry.champions(store, prefix).items():
            registry.set_version_tags(
                store, name, version.version, {"trained_at": OLD, "trained_as_of": OLD[:10]}
            )
    before = registry.champions(dev, prefix)
    assert _prod(trained, "score", "--as-of", str(TODAY)) == 1  # the trap: stale, refused
    # a retrain whose every challenger fails the gate: the champions are kept
    impossible = ("--set", "training.gate.max_mape=0.0001", "--set", "training.gate.overrides=[]")
    for step in ("train", "evaluate", "register", "promote"):
        assert trained.run(step, *impossible) == 0, step
    gate = json.loads((trained.work / "reports" / "gate.json").read_text())["partitions"]
    assert {g["decision"] for g in gate.values()} == {"keep_champion"}
    after = registry.champions(dev, prefix)
    for name, version in after.items():
        if before[name].tags["model_kind"] == "baseline":  # refit on the latest data
            assert version.version != before[name].version
            assert version.tags["model_kind"] == "baseline" and version.tags["trained_at"] > OLD
        else:  # the same version, re-validated
            assert version.version == before[name].version
            assert version.tags["last_validated_at"] > OLD
    assert _prod(trained, "promote", "--to", "prod") == 0
    assert _prod(trained, "score", "--as-of", str(TODAY)) == 0
    scoring = (trained.work / "reports" / "scoring.md").read_text()
    assert "stale" not in scoring and "validated" in scoring

"""Dev -> prod promotion and batch scoring with the promoted champions."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa

from manymodels import registry
from manymodels.config import load_settings

pytestmark = pytest.mark.slow

TODAY = dt.date.today()  # the sample's models are trained today: scoring today is fresh


def _stores(ws):
    settings = load_settings("pipelines", "dev", [f"project.workdir={ws.work}"])
    return (
        settings,
        registry.resolve_store(settings, "dev"),
        registry.resolve_store(settings, "prod"),
    )


def _prod(ws, step, *extra):
    return ws.run(step, "--env", "prod", *extra)


def test_promote_to_prod_copies_versions_with_lineage_once(trained):
    settings, dev, prod = _stores(trained)
    assert _prod(trained, "promote", "--to", "prod") == 0
    dev_champions = registry.champions(dev, settings.mlflow.model_prefix)
    prod_champions = registry.champions(prod, settings.mlflow.model_prefix)
    assert set(prod_champions) == set(dev_champions) and len(prod_champions) == 8
    for name, version in prod_champions.items():
        source = dev_champions[name]
        assert version.tags["source_env"] == "dev"
        assert version.tags["source_version"] == str(source.version)
        assert version.tags["source_run_id"] == source.run_id
        assert version.tags["git_sha"] == source.tags["git_sha"]
        assert version.tags["data_version"] == source.tags["data_version"]
    # promoting again copies nothing new
    assert _prod(trained, "promote", "--to", "prod") == 0
    again = json.loads((trained.work / "runs" / "promotion-prod.json").read_text())["promoted"]
    assert not any(p["copied"] for p in again.values())
    assert registry.champions(prod, settings.mlflow.model_prefix).keys() == prod_champions.keys()


def test_score_writes_predictions_once_per_date(trained):
    assert _prod(trained, "promote", "--to", "prod") == 0
    for _ in range(2):  # scoring the same date twice replaces, never duplicates
        assert _prod(trained, "score", "--as-of", str(TODAY)) == 0
    out = trained.work / "predictions" / f"scoring_date={TODAY}" / "predictions.parquet"
    predictions = pd.read_parquet(out)
    # every series of every partition, for each of the 4 horizon weeks
    assert len(predictions) == 4 * 6 * 4  # 4 stores x 6 products x 4 weeks
    assert predictions["partition"].nunique() == 8
    assert (predictions["prediction"] >= 0).all()
    assert set(predictions["model_kind"]) <= {"ensemble", "baseline"}
    engine = sa.create_engine(f"sqlite:///{trained.work / 'predictions.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT COUNT(*) FROM predictions WHERE scoring_date = :d"), {"d": str(TODAY)}
        ).scalar()
    assert rows == len(predictions)
    report = (trained.work / "reports" / "scoring.md").read_text()
    assert "Batch scoring" in report and "scored" in report


def test_stale_champion_is_refused_unless_allowed(trained):
    assert _prod(trained, "promote", "--to", "prod") == 0
    late = TODAY + dt.timedelta(days=61)
    assert _prod(trained, "score", "--as-of", str(late)) == 1
    assert "stale: refused" in (trained.work / "reports" / "scoring.md").read_text()
    assert _prod(trained, "score", "--as-of", str(late), "--allow-stale") == 0
    assert "scored (stale)" in (trained.work / "reports" / "scoring.md").read_text()


def test_partition_without_model_is_reported(workspace):
    for step, extra in (("condition", ()), ("validate", ("--as-of", "2018-02-26"))):
        assert workspace.run(step, *extra) == 0
    assert _prod(workspace, "score", "--as-of", str(TODAY)) == 1
    assert "no model" in (workspace.work / "reports" / "scoring.md").read_text()
    assert workspace.run("promote", "--to", "prod") == 2  # nothing in dev to promote

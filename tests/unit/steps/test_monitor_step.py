"""``manymodels monitor`` end to end on small inputs and a real (empty) MLflow store: bad input is
reported clearly, never with a traceback, and what was written stays readable."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from manymodels.io import write_json
from manymodels.scoring import write_sql
from manymodels.steps import monitor
from manymodels.steps.condition import manifest_for


@pytest.fixture
def conditioned(workdir, table, raw_dir):
    folder = workdir / "conditioned"
    folder.mkdir(parents=True)
    table.to_parquet(folder / "demand.parquet", index=False)
    write_json(manifest_for(table, {}, raw_dir), folder / "manifest.json")
    return table


def _predictions(table: pd.DataFrame, store_prefix: str = "") -> pd.DataFrame:
    last = table["week"].max()
    rows = table[table["week"] > last - pd.Timedelta(weeks=4)].copy()
    rows["store_id"] = store_prefix + rows["store_id"]
    rows["prediction"] = rows["units"].fillna(1.0) * 1.1
    rows["partition"] = "p"
    rows["scoring_date"] = str((last - pd.Timedelta(weeks=4)).date())
    for col in ("model_name", "model_version", "model_kind", "scored_at"):
        rows[col] = "x"
    return rows


def _write(settings, frame):
    out = settings.path("predictions", f"scoring_date={frame['scoring_date'].iloc[0]}")
    out.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out / "predictions.parquet", index=False)


def _report(settings) -> dict:
    return json.loads(settings.path("monitoring", "monitoring.json").read_text())


def test_without_a_conditioned_table_it_says_what_to_run(common_args, in_tmp, caplog):
    assert monitor.main([*common_args, "--local"]) == 2
    assert "run `manymodels condition` first" in caplog.text


def test_an_empty_history_is_reported_and_the_dashboard_still_written(
    conditioned, settings, common_args, in_tmp, caplog
):
    assert monitor.main([*common_args, "--local", "--fail-on-alert"]) == 0
    report = _report(settings)
    assert report["problems"][0]["what"] == "empty history" and report["alerts"] == []
    assert "no served predictions" in caplog.text
    assert settings.path("monitoring", "dashboard.html").stat().st_size > 1_000_000
    assert settings.path("monitoring", "retrain.txt").read_text() == "\n"


def test_predictions_from_another_data_set_exit_2_naming_them(
    conditioned, settings, common_args, in_tmp, caplog
):
    _write(settings, _predictions(conditioned, store_prefix="X"))
    assert monitor.main([*common_args, "--local"]) == 2
    assert "are not in the conditioned table" in caplog.text and "Traceback" not in caplog.text
    report = _report(settings)
    assert [a["kind"] for a in report["alerts"]] == ["input"]


def test_sql_predictions_are_joined_and_fail_on_alert_exits_1(
    conditioned, settings, common_args, in_tmp
):
    preds = _predictions(conditioned)
    url = f"sqlite:///{settings.path('predictions.db').resolve()}"
    settings.workdir.mkdir(parents=True, exist_ok=True)
    write_sql(preds, url, "predictions", preds["scoring_date"].iloc[0])
    bad = {"summary": {"data_version": "v", "as_of": "2018-03-01", "rows": 10},
           "findings": [{"check": "duplicates", "severity": "error"}]}  # fmt: skip
    write_json(bad, settings.path("reports", "validation.json"))
    assert monitor.main([*common_args, "--local", "--from-sql", "--fail-on-alert"]) == 1
    report = _report(settings)
    assert report["overview"]["forecasts_with_actuals"] == int(preds["units"].notna().sum())
    assert report["data"]["predictions"] == "table predictions"
    assert any(a["kind"] == "data quality" for a in report["alerts"])

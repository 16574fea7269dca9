"""The dashboard rendered in a real headless Chromium: what a person looks for is there after
its scripts ran (titles, drawn plots, the partitions in alert), and a screenshot is kept.

Chromium comes from Debian's ``chromium`` package (``make test`` installs it when it runs as
root); without a browser the browser tests skip and say why. The screenshot lands in
``$TEST_ARTIFACTS`` (default ``work/test-artifacts/``), which CI uploads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from manymodels.config import AccuracyMonitorSettings, DriftMonitorSettings
from manymodels.monitoring import accuracy, drift, staleness, summary
from manymodels.monitoring.dashboard import render_dashboard, render_markdown

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "work" / "test-artifacts"))
BROWSER = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-extensions", "--hide-scrollbars", "--virtual-time-budget=15000"]  # fmt: skip
needs_browser = pytest.mark.skipif(
    BROWSER is None, reason="no chromium: `apt-get install -y chromium` (make test does, as root)"
)


def make_report(predictions: pd.DataFrame, actuals: pd.DataFrame) -> dict:
    joined = accuracy.join_actuals(predictions, actuals, "work/predictions")
    rolling = accuracy.rolling_metrics(joined.joined, 4)
    settings = AccuracyMonitorSettings()
    alerts = accuracy.accuracy_alerts(rolling, {"a": 0.45, "b": 0.45}, {}, settings)
    drifts = {}
    for pid in ("a", "b"):
        part = actuals[actuals["partition"] == pid]
        ref = drift.profile(part[part["week"] < "2023-11-06"], ["units", "temp_f"], ["store_id"])
        recent = part[part["week"] >= "2023-11-06"]
        drifts[pid] = drift.compare(ref, recent, DriftMonitorSettings())
    champions = [
        {"partition": "a", "model": "demand.a", "version": "3", "created": "2023-09-01",
         "tags": {"trained_at": "2024-01-10T00:00:00", "model_kind": "ensemble"}},
        {"partition": "b", "model": "demand.b", "version": "1", "created": "2023-09-01",
         "tags": {"trained_at": "2023-08-01T00:00:00", "model_kind": "baseline",
                  "last_validated_at": "2023-12-01T00:00:00"}},
    ]  # fmt: skip
    stale = staleness.staleness(champions, pd.Timestamp("2024-01-22").date(), 60, 14)
    runs = [{"run_id": "abcdef123456", "pipeline": "training", "status": "FINISHED",
             "start": "2023-12-20T06:00:00+00:00", "seconds": 321.0,
             "metrics": {"fit_seconds": 250.0, "partitions_trained": 2}, "tags": {}}]  # fmt: skip
    quality = [{"run": "current", "as_of": "2024-01-22", "data_version": "abc", "rows": 7680,
                "errors": 0, "warnings": 1, "checks": ["freshness"]}]  # fmt: skip
    return summary.build_report(
        as_of="2024-01-22", env="prod",
        data={"data_version": "abc", "first_week": "2021-01-04", "last_actual_week": "2024-01-22",
              "predictions": "work/predictions", "scoring_dates": ["2023-11-05"]},
        partitions={p: {"model": f"demand.{p}", "kind": "ensemble", "keys": {}, "mape_bar": 0.45}
                    for p in ("a", "b")},
        weekly=accuracy.weekly_metrics(joined.joined), rolling=rolling,
        series=joined.joined.assign(prediction=joined.joined["prediction"])[
            ["partition", "store_id", "product_id", "week", "units", "prediction"]],
        accuracy_alerts=alerts, drift=drifts, stale=stale, quality=quality, runs=runs,
        problems=joined.problems, drift_min_features=1,
    )  # fmt: skip


@pytest.fixture(scope="module")
def report(predictions, actuals) -> dict:
    return make_report(predictions, actuals)


def test_the_report_puts_the_drifted_partition_in_alert_and_to_retrain(report):
    assert report["partitions_in_alert"] == ["b"] and report["retrain"] == ["b"]
    kinds = {a["kind"] for a in report["alerts"] if a["partition"] == "b"}
    assert kinds == {"accuracy", "drift", "staleness"}  # validated 52 days ago: within 14 of 60
    assert report["partitions"]["a"]["status"] == "ok"


def test_markdown_summary_names_the_partitions_in_alert(report):
    text = render_markdown(report)
    assert "**1 in alert**" in text and "Retrain: b" in text and "| b | drift |" in text


def test_the_dashboard_is_one_offline_file(report):
    page = render_dashboard(report)
    assert page.startswith("<!DOCTYPE html>") and "Plotly" in page
    outside = page.replace(get_plotlyjs(), "")  # what the page itself loads: nothing
    assert "<script src=" not in outside and "<link" not in outside and "http" not in outside


def _chromium(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@needs_browser
def test_the_dashboard_renders_in_chromium_with_plots_and_alerts(report, tmp_path):
    page = tmp_path / "dashboard.html"
    page.write_text(render_dashboard(report))
    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    for title in ("manymodels monitoring", "Overview", "Alerts (", "Model health per partition",
                  "Predictions vs actuals", "Input drift", "Stale models", "Data quality",
                  "Pipeline steps"):  # fmt: skip
        assert title in html, f"the rendered dashboard lacks {title!r}"
    # plotly drew its SVGs (the JS ran), and the series plot was drawn for a partition in alert
    assert html.count('class="main-svg"') >= 6
    assert 'data-drawn="b|' in html
    assert "input drift: " in html and "temp_f (PSI" in html and "about to go stale" in html
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    done = _chromium(f"--screenshot={shot}", "--window-size=1280,4200", page.as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 50_000, done.stderr[-2000:]

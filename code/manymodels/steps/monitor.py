"""Step ``monitor``: served forecasts against actuals, input drift, stale champions, data quality
and pipeline runs; alerts; one self-contained HTML dashboard.

Reads every scoring date's predictions (``<workdir>/predictions/scoring_date=*/`` or, with
``--from-sql``, the ``scoring.sql_table`` table) and the newest conditioned table (the actuals),
the champions of ``--env`` with the drift profile stored in each version, the latest validation
report and the last runs in MLflow. Writes ``<workdir>/monitoring/monitoring.json``,
``monitoring.md`` (a job summary), ``retrain.txt`` (partitions to retrain) and
``dashboard.html``, and logs them to an MLflow run named ``monitoring``. Thresholds:
``pipelines/monitoring.yaml``. Exits 2 on bad input (predictions from another data set), 1 with
``--fail-on-alert`` when anything is in alert, else 0.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from mlflow.exceptions import MlflowException

from manymodels import registry
from manymodels.config import Settings
from manymodels.data.partition import split_partitions
from manymodels.io import read_json, write_json, write_text
from manymodels.monitoring import accuracy, drift, staleness, summary
from manymodels.monitoring.dashboard import render_dashboard, render_markdown
from manymodels.steps import (
    add_data_option,
    as_of_date,
    base_parser,
    guarded,
    parse_date,
    settings_from,
    setup_logging,
)
from manymodels.steps.condition import read_conditioned

__all__ = ["main", "read_predictions", "series_frame"]

log = logging.getLogger(__name__)
HISTORY_WEEKS = 16  # weeks of actuals drawn before a series' first forecast


def read_predictions(settings: Settings, from_sql: bool) -> tuple[pd.DataFrame, str]:
    """Every served prediction, from the parquet folders or the SQL table; and where from."""
    if from_sql:
        url = settings.scoring.sql_url or f"sqlite:///{settings.path('predictions.db').resolve()}"
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(settings.scoring.sql_table):
                    return pd.DataFrame(), f"table {settings.scoring.sql_table}"
                frame = pd.read_sql_table(settings.scoring.sql_table, conn)
        finally:
            engine.dispose()
        return frame, f"table {settings.scoring.sql_table}"
    folder = settings.path("predictions")
    files = sorted(folder.glob("scoring_date=*/predictions.parquet"))
    frames = [pd.read_parquet(f) for f in files]
    frames = [f for f in frames if len(f)]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), str(folder)


def series_frame(table: pd.DataFrame, joined: pd.DataFrame, awaiting: pd.DataFrame) -> pd.DataFrame:
    """Per series and week: actual units and the latest forecast, for the dashboard's selector."""
    served = pd.concat([joined, awaiting], ignore_index=True)
    if served.empty:
        return pd.DataFrame()
    latest = accuracy.latest_forecasts(served)
    keys = ["partition", *accuracy.SERIES]
    first = latest.groupby(keys)["week"].min().rename("first")
    start = first.min() - pd.Timedelta(weeks=HISTORY_WEEKS)
    actual = table.loc[table["week"] >= start, ["week", *accuracy.SERIES, "units"]]
    grid = actual.merge(first.reset_index(), on=accuracy.SERIES)
    grid = grid[grid["week"] >= grid["first"] - pd.Timedelta(weeks=HISTORY_WEEKS)]
    out = grid.drop(columns="first").merge(
        latest[[*keys, "week", "prediction"]], on=[*keys, "week"], how="outer"
    )
    return out.sort_values([*keys, "week"]).reset_index(drop=True)


def _champions(store, settings: Settings, pids=()) -> dict[str, dict]:
    prefix = settings.mlflow.model_prefix
    out, names = {}, None  # plain MLflow: searched by pattern; else by the data's partitions
    if registry.by_name_only(store):
        names = {registry.model_name(settings, pid): pid for pid in pids}
    for name, v in registry.champions(store, prefix, names).items():
        created = dt.datetime.fromtimestamp(v.creation_timestamp / 1000, dt.UTC).isoformat()
        out[(names or {}).get(name, name.removeprefix(prefix + "."))] = {
            "model": name,
            "version": str(v.version),
            "tags": dict(v.tags),
            "created": created,
            "mv": v,
        }
    return out


def _drift(store, champs: dict, parts: dict, settings: Settings) -> dict[str, list[dict]]:
    out = {}
    for pid, c in champs.items():
        if pid not in parts:
            continue
        ref = registry.read_version_json(store, c["mv"], drift.PROFILE_FILE)
        if ref is None:
            out[pid] = [
                {
                    "feature": "*",
                    "status": "no profile",
                    "note": "model trained before drift profiles: retrain to get one",
                }
            ]
            continue
        window = drift.current_window(parts[pid], ref, settings.monitoring.drift.window_weeks)
        out[pid] = drift.compare(ref, window, settings.monitoring.drift)
    return out


def _runs(store, settings: Settings, local: bool, problems: list[dict]) -> list[dict]:
    """This store's pipeline runs; in prod also dev's training runs (where models come from)."""
    n, experiment = settings.monitoring.history_runs, settings.mlflow.experiment
    runs = registry.recent_runs(store, experiment, ("training", "monitoring"), n)
    if settings.env == "prod":
        dev = registry.resolve_store(settings, "dev", local=local)
        try:
            runs += registry.recent_runs(dev, experiment, ("training",), n)
        except MlflowException as exc:  # reported, never taken for "no training runs"
            problems.append({
                "severity": "warning", "what": "dev training runs unreadable",
                "message": f"could not read training runs from the dev store: {exc}"[:500],
            })  # fmt: skip
    return sorted(runs, key=lambda r: r["start"])


@guarded
def main(argv: list[str] | None = None) -> int:  # noqa: PLR0914 (one place wires the panels)
    parser = base_parser("monitor", __doc__)
    add_data_option(parser)
    parser.add_argument("--as-of", type=parse_date, help="date ages are counted to")
    parser.add_argument("--from-sql", action="store_true", help="read predictions from SQL")
    parser.add_argument("--out", type=Path, help="folder (default: <workdir>/monitoring)")
    parser.add_argument(
        "--fail-on-alert", action="store_true", help="exit 1 when anything is in alert"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    m = settings.monitoring
    table, manifest = read_conditioned(args.data or settings.path("conditioned"))
    as_of = as_of_date(args.as_of, settings)
    store = registry.resolve_store(settings, local=args.local)
    from_sql = args.from_sql or m.predictions_from == "sql"
    predictions, where = read_predictions(settings, from_sql)
    joined = accuracy.join_actuals(predictions, table, where)
    weekly = accuracy.weekly_metrics(joined.joined)
    rolling = accuracy.rolling_metrics(joined.joined, m.accuracy.rolling_weeks)
    parts = split_partitions(table, settings.partition.keys)
    champs = _champions(store, settings, parts)
    partitions, bars, backtest = {}, {}, {}
    for pid, c in champs.items():
        kind = c["tags"].get("model_kind", "ensemble")
        keys = {k: c["tags"].get(k, "") for k in settings.partition.keys}
        rules = settings.training.gate.rules(keys)  # slow movers: WAPE, as the gate judges them
        bars[pid] = (rules.metric, rules.max_error)
        backtest[pid] = float(c["tags"].get(f"{kind}_{rules.metric}", "nan"))
        partitions[pid] = {
            "model": c["model"],
            "version": c["version"],
            "kind": kind,
            "keys": keys,
            "metric": rules.metric,
            "mape_bar": rules.max_error if rules.metric == "mape" else None,
            "bar": rules.max_error,
            "backtest_mape": float(c["tags"].get(f"{kind}_mape", "nan")),
            "backtest_error": backtest[pid],  # in the gate's metric for the partition
        }
    for pid in sorted(set(parts) - set(champs)):
        partitions[pid] = {"model": None, "kind": "none", "keys": {}, "mape_bar": None}
    for r in summary.records(rolling.groupby("partition").tail(1)) if len(rolling) else []:
        partitions.setdefault(r["partition"], {"kind": "none", "keys": {}})["rolling"] = r
    stale = staleness.staleness(
        [{"partition": p, **c} for p, c in champs.items()],
        as_of,
        settings.scoring.max_model_age_days,
        m.staleness.warn_days,
    )
    validation = settings.path("reports", "validation.json")
    runs = _runs(store, settings, args.local, joined.problems)
    quality = [
        {
            "run": r["run_id"][:8],
            "as_of": r["tags"].get("as_of"),
            "rows": r["metrics"].get("quality_rows"),
            "errors": int(r["metrics"].get("quality_errors", 0)),
            "warnings": int(r["metrics"].get("quality_warnings", 0)),
            "data_version": r["tags"].get("data_version"),
            "checks": [],
        }
        for r in runs
        if r["pipeline"] == "monitoring" and "quality_rows" in r["metrics"]
    ]
    current = summary.quality_row(read_json(validation) if validation.exists() else None)
    quality = summary.dedupe_quality([*quality, *([current] if current else [])])
    report = summary.build_report(
        as_of=str(as_of),
        env=settings.env,
        data={
            "data_version": manifest["data_version"],
            "first_week": manifest["first_week"],
            "last_actual_week": manifest["last_actual_week"],
            "predictions": where,
            "scoring_dates": sorted(
                map(str, predictions.get("scoring_date", pd.Series()).unique())
            ),
        },
        partitions=partitions,
        weekly=weekly,
        rolling=rolling,
        series=series_frame(table, joined.joined, joined.awaiting),
        accuracy_alerts=accuracy.accuracy_alerts(rolling, bars, backtest, m.accuracy),
        drift=_drift(store, champs, parts, settings),
        stale=stale,
        quality=quality,
        runs=runs,
        problems=joined.problems,
        drift_min_features=m.drift.min_features,
    )
    out = args.out or settings.path("monitoring")
    write_json(report, out / "monitoring.json")
    write_text(render_markdown(report), out / "monitoring.md")
    write_text(" ".join(report["retrain"]) + "\n", out / "retrain.txt")
    write_text(render_dashboard(report), out / "dashboard.html")
    _log_run(store, settings, report, current, out)
    for p in report["problems"]:
        getattr(log, {"error": "error", "warning": "warning"}.get(p["severity"], "info"))(
            "monitor: %s: %s", p["what"], p["message"]
        )
    for a in report["alerts"]:
        log.warning("monitor: ALERT %s [%s]: %s", a["partition"], a["kind"], a["message"])
    o = report["overview"]
    log.info(
        "monitor: %d partitions, %d in alert (%d alerts), %d stale, %d about to go stale; "
        "dashboard: %s",
        o["partitions"],
        o["in_alert"],
        o["alerts"],
        o["stale"],
        o["about_to_go_stale"],
        (out / "dashboard.html").resolve(),
    )
    if any(p["severity"] == "error" for p in report["problems"]):
        return 2
    return 1 if args.fail_on_alert and report["alerts"] else 0


def _log_run(store, settings: Settings, report: dict, quality: dict | None, out: Path) -> None:
    tags = registry.git_tags() | {
        "pipeline": "monitoring",
        "env": settings.env,
        "as_of": report["as_of"],
        "data_version": report["data"]["data_version"],
        "partitions_in_alert": " ".join(report["partitions_in_alert"])[:5000],
    }
    with registry.pipeline_run(store, settings.mlflow.experiment, "monitoring", tags) as run:
        metrics = {f"monitor_{k}": v for k, v in report["overview"].items()}
        if quality:
            metrics |= {
                "quality_rows": quality["rows"] or 0,
                "quality_errors": quality["errors"],
                "quality_warnings": quality["warnings"],
            }
        registry.log_metrics(store, run.info.run_id, metrics)
        for name in ("monitoring.json", "monitoring.md", "dashboard.html"):
            registry.log_artifact(store, run.info.run_id, out / name, "monitoring")


if __name__ == "__main__":
    raise SystemExit(main())

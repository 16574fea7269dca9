"""Served forecasts against the actuals that arrived since: per partition and week, rolling.

Weekly scoring forecasts each week several times (once per horizon week). The headline metrics
use the **latest** forecast of each series and week, the one served last; every forecast is kept
in the joined frame with its horizon. Metrics are those of the gate (:mod:`manymodels.metrics`)
plus bias, sum(forecast - actual) / sum(actual): positive means over-forecasting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from manymodels.config import AccuracyMonitorSettings
from manymodels.metrics import evaluate

__all__ = ["JoinResult", "accuracy_alerts", "join_actuals", "rolling_metrics", "weekly_metrics"]

SERIES = ["store_id", "product_id"]
REQUIRED = ("scoring_date", "partition", "store_id", "product_id", "week", "prediction")


class JoinResult:
    """Forecasts joined with actuals, plus what could not be joined and why."""

    def __init__(self, joined: pd.DataFrame, awaiting: pd.DataFrame, problems: list[dict]):
        self.joined = joined  # forecasts whose week has a known actual
        self.awaiting = awaiting  # forecasts whose actual has not arrived yet
        self.problems = problems  # {"severity", "what", "message"}


def join_actuals(predictions: pd.DataFrame, table: pd.DataFrame, where: str = "") -> JoinResult:
    """Join ``predictions`` (the scoring step's rows) with the units of ``table``.

    Args:
        predictions: rows with scoring_date, partition, store_id, product_id, week, prediction.
        table: the (newer) standard table: week, store_id, product_id, units (NaN: unknown).
        where: where the predictions come from, named in messages.

    Returns:
        A :class:`JoinResult`. A series the table does not know at all means the predictions
        come from another data set (or data version): reported as an error, never joined.
    """
    problems: list[dict] = []
    if predictions.empty:
        problems.append(
            {
                "severity": "notice",
                "what": "empty history",
                "message": f"no served predictions in {where or 'the predictions source'} yet: "
                "run `manymodels score` first; accuracy is monitored once predictions exist",
            }
        )
        empty = predictions.assign(units=pd.Series(dtype=float))
        return JoinResult(empty, empty, problems)
    missing = [c for c in REQUIRED if c not in predictions.columns]
    if missing:
        problems.append(
            {
                "severity": "error",
                "what": "predictions not readable",
                "message": f"{where}: the predictions lack column(s) {missing}: they are not "
                "the `score` step's output (see manymodels.scoring.PREDICTION_COLUMNS)",
            }
        )
        empty = predictions.iloc[0:0].assign(units=pd.Series(dtype=float))
        return JoinResult(empty, empty, problems)
    preds = predictions.drop(columns=["units"], errors="ignore")
    preds = preds.assign(week=pd.to_datetime(preds["week"]))
    preds["horizon"] = preds.groupby(["scoring_date", "partition"])["week"].rank(method="dense")
    known_series = table[SERIES].drop_duplicates()
    merged = preds.merge(known_series.assign(_known=True), on=SERIES, how="left")
    unknown = merged["_known"].isna()
    if unknown.any():
        for date, rows in merged[unknown].groupby("scoring_date"):
            bad = rows[SERIES].drop_duplicates()
            total = preds.loc[preds["scoring_date"] == date, SERIES].drop_duplicates()
            problems.append(
                {
                    "severity": "error",
                    "what": "predictions from another data set",
                    "scoring_date": str(date),
                    "message": f"{where} scoring_date={date}: {len(bad)} of {len(total)} series "
                    f"are not in the conditioned table (e.g. {bad.head(3).to_dict('records')}): "
                    "these predictions were scored from another data set or data version; "
                    "monitor them against that data (--data) or remove that scoring date",
                }
            )
    preds = merged[~unknown].drop(columns="_known")
    units = table[["week", *SERIES, "units"]]
    joined = preds.merge(units, on=["week", *SERIES], how="left")
    has = joined["units"].notna()
    last = table.loc[table["units"].notna(), "week"].max()
    awaiting = joined[~has]
    if len(awaiting):
        late = awaiting[awaiting["week"] <= last]
        problems.append(
            {
                "severity": "warning" if len(late) else "info",
                "what": "missing actuals",
                "message": f"{len(awaiting)} forecast(s) have no actual yet"
                + (
                    f", {len(late)} of them for weeks up to {last:%F}, the table's last week with "
                    "actuals: those series did not report (check the shipments export)"
                    if len(late)
                    else f" (weeks after {last:%F}: they arrive with the next data)"
                ),
            }
        )
    return JoinResult(joined[has].reset_index(drop=True), awaiting.reset_index(drop=True), problems)


def latest_forecasts(joined: pd.DataFrame) -> pd.DataFrame:
    """The most recent forecast of each series and week (what was served last)."""
    order = joined.sort_values("scoring_date")
    return order.drop_duplicates(["partition", "week", *SERIES], keep="last")


def _metrics(rows: pd.DataFrame) -> dict:
    y, p = rows["units"].to_numpy(float), rows["prediction"].to_numpy(float)
    out = evaluate(y, p) if len(rows) else dict.fromkeys(("mape", "wape", "rmse", "rmse_zero"))
    total = y.sum()
    out["bias"] = float((p - y).sum() / total) if total else float("nan")
    out["mape_se"], out["wape_se"] = _standard_errors(y, p)
    out["rows"] = len(rows)
    out["actual"], out["forecast"] = float(total), float(p.sum())
    return out


def _standard_errors(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The sampling standard errors of MAPE (mean of the non-zero rows' |e|/y) and of WAPE
    (a ratio of sums: linearised, sum(|e| - WAPE y)^2), NaN with fewer than two rows."""
    nan = float("nan")
    error = np.abs(y - p)
    nonzero = y != 0
    n = int(nonzero.sum())
    ape = error[nonzero] / np.abs(y[nonzero])
    mape_se = float(ape.std(ddof=1) / np.sqrt(n)) if n > 1 else nan
    total, m = np.abs(y).sum(), len(y)
    if m < 2 or total == 0:
        return mape_se, nan
    resid = error - error.sum() / total * np.abs(y)
    return mape_se, float(np.sqrt((resid**2).sum() * m / (m - 1)) / total)


def weekly_metrics(joined: pd.DataFrame) -> pd.DataFrame:
    """Per partition and week: MAPE, WAPE, RMSE, RMSE on zero actuals, bias, rows, totals."""
    if joined.empty:
        return pd.DataFrame(
            columns=[
                "partition",
                "week",
                "mape",
                "wape",
                "rmse",
                "rmse_zero",
                "bias",
                "mape_se",
                "wape_se",
                "rows",
                "actual",
                "forecast",
            ]
        )
    rows = [
        {"partition": pid, "week": week, **_metrics(g)}
        for (pid, week), g in latest_forecasts(joined).groupby(["partition", "week"])
    ]
    return pd.DataFrame(rows)


def rolling_metrics(joined: pd.DataFrame, weeks: int) -> pd.DataFrame:
    """Per partition and week: the metrics pooled over the ``weeks`` weeks ending there."""
    if joined.empty:
        return weekly_metrics(joined)
    latest = latest_forecasts(joined)
    rows = []
    for pid, g in latest.groupby("partition"):
        ends = sorted(g["week"].unique())
        for i, end in enumerate(ends):
            window = g[g["week"].isin(ends[max(0, i - weeks + 1) : i + 1])]
            rows.append({"partition": pid, "week": end, **_metrics(window)})
    return pd.DataFrame(rows)


def accuracy_alerts(
    rolling: pd.DataFrame,
    bars: dict[str, float | tuple[str, float]],
    backtest: dict[str, float],
    settings: AccuracyMonitorSettings,
) -> dict[str, list[str]]:
    """Per partition, the accuracy alerts of its most recent weeks.

    Args:
        rolling: :func:`rolling_metrics` output.
        bars: partition -> the gate's bar for it: a MAPE bar, or ``(metric, bar)`` where the
            gate judges the partition by another metric (slow movers: WAPE, since MAPE over
            non-zero weeks rewards over-forecasting).
        backtest: partition -> the champion's backtest error in that metric (version tags).
        settings: the breach rule.

    A rolling error counts as above a bar only when it is above it by more than
    ``settings.confidence_z`` of its sampling standard errors (``mape_se``/``wape_se``): a small
    partition's error moves that much by chance from week to week, a large one's hardly at all.

    Returns:
        partition -> alert messages (partitions without alerts are left out).
    """
    out: dict[str, list[str]] = {}
    if rolling.empty:
        return out
    enough = rolling[rolling["rows"] >= settings.min_rows]
    for pid, g in enough.sort_values("week").groupby("partition"):
        if g.empty:
            continue
        msgs, bar = [], bars.get(pid)
        metric, bar = bar if isinstance(bar, tuple) else ("mape", bar)
        name = metric.upper()
        low = g[metric] - settings.confidence_z * _se(g, metric)  # the band's lower edge
        tail = low.tail(settings.breach_weeks)
        if bar is not None and len(tail) == settings.breach_weeks and (tail > bar).all():
            msgs.append(
                f"rolling {settings.rolling_weeks}-week {name} above the gate's bar "
                f"{bar:.2f} for {settings.breach_weeks} weeks (last {g[metric].iloc[-1]:.2f}"
                f"{_band(g, metric, settings)})"
            )
        last, ref = g[metric].iloc[-1], backtest.get(pid)
        if ref and not np.isnan(ref) and low.iloc[-1] > ref * settings.max_backtest_ratio:
            msgs.append(
                f"rolling {name} {last:.2f}{_band(g, metric, settings)} is {last / ref:.1f}x the "
                f"champion's backtest {name} {ref:.2f} (limit {settings.max_backtest_ratio}x)"
            )
        if msgs:
            out[pid] = msgs
    return out


def _se(g: pd.DataFrame, metric: str) -> pd.Series:
    """The standard error column of ``metric`` (0 where unknown: the plain rule)."""
    column = f"{metric}_se"
    return g[column].fillna(0.0) if column in g else pd.Series(0.0, index=g.index)


def _band(g: pd.DataFrame, metric: str, settings: AccuracyMonitorSettings) -> str:
    se = float(_se(g, metric).iloc[-1])
    return f" +/- {settings.confidence_z * se:.2f}" if se and settings.confidence_z else ""

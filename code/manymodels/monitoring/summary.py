"""The monitoring report: every panel's data in one JSON-ready dict, and the alerts drawn from it.

An alert names a partition (or ``*`` for the whole pipeline), its kind (accuracy, drift,
staleness, data quality, pipeline) and what a person should read. ``retrain`` lists the
partitions whose alerts retraining can fix (accuracy, drift, staleness): what the monitoring
workflow hands to model-validation CD.
"""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["RETRAINABLE", "build_report", "dedupe_quality", "quality_row", "records"]

RETRAINABLE = ("accuracy", "drift", "staleness")


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows of ``frame`` as JSON-ready dicts (weeks as dates, NaN as None)."""
    if frame is None or frame.empty:
        return []
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d")
    rows = out.to_dict("records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in rows
    ]


def quality_row(validation: dict | None, run: str = "current") -> dict | None:
    """One data-quality point from a ``validation.json`` report: rows and findings by severity."""
    if not validation:
        return None
    findings = validation.get("findings", [])
    summary = validation.get("summary", {})
    checks = sorted({f.get("check", "?") for f in findings})
    return {
        "run": run,
        "as_of": summary.get("as_of"),
        "data_version": summary.get("data_version"),
        "rows": summary.get("rows"),
        "weeks": summary.get("weeks"),
        "errors": sum(f.get("severity", "error") == "error" for f in findings),
        "warnings": sum(f.get("severity") == "warning" for f in findings),
        "checks": checks,
    }


def dedupe_quality(rows: list[dict]) -> list[dict]:
    """One point per (data version, as-of date), the latest; in their order."""
    seen = {(r["data_version"], r["as_of"]): r for r in rows}
    return list(seen.values())


def build_report(
    *,
    as_of: str,
    env: str,
    data: dict,
    partitions: dict[str, dict],
    weekly: pd.DataFrame,
    rolling: pd.DataFrame,
    series: pd.DataFrame,
    accuracy_alerts: dict[str, list[str]],
    drift: dict[str, list[dict]],
    stale: list[dict],
    quality: list[dict],
    runs: list[dict],
    problems: list[dict],
    drift_min_features: int,
) -> dict:
    """Assemble ``monitoring.json``: the panels, the alerts and the partitions to retrain."""
    alerts = []
    for pid, msgs in accuracy_alerts.items():
        alerts += [{"partition": pid, "kind": "accuracy", "message": m} for m in msgs]
    for pid, rows in drift.items():
        hot = [r for r in rows if r.get("status") == "alert"]
        if len(hot) >= drift_min_features:
            names = ", ".join(
                f"{r['feature']} (PSI {r['psi']:.2f}, KS {r['ks']:.2f})"
                if "psi" in r
                else f"{r['feature']} (share shift {r['share_shift']:.2f})"
                for r in hot[:5]
            )
            alerts.append({"partition": pid, "kind": "drift", "message": f"input drift: {names}"})
    for r in stale:
        if r["status"] != "fresh":
            when = "is past" if r["status"] == "stale" else f"is {r['days_left']} days from"
            alerts.append(
                {
                    "partition": r["partition"],
                    "kind": "staleness",
                    "message": f"{r['model']} v{r['version']} {when} the age limit (last "
                    f"{r['age_basis']} {r['last_validated_at']}, {r['age_days']} days)",
                }
            )
    latest = quality[-1] if quality else None
    if latest and latest["errors"]:
        alerts.append(
            {
                "partition": "*",
                "kind": "data quality",
                "message": f"validation of data {latest['data_version']} found {latest['errors']} "
                f"error(s): {', '.join(latest['checks'])}",
            }
        )
    failed = [r for r in runs if r["status"] == "FAILED"][-3:]
    for r in failed:
        alerts.append(
            {
                "partition": "*",
                "kind": "pipeline",
                "message": f"{r['pipeline']} run {r['run_id'][:8]} ({r['start'][:16]}) FAILED",
            }
        )
    for p in problems:
        if p["severity"] == "error":
            alerts.append({"partition": "*", "kind": "input", "message": p["message"]})
    in_alert = sorted({a["partition"] for a in alerts if a["partition"] != "*"})
    retrain = sorted({a["partition"] for a in alerts if a["kind"] in RETRAINABLE})
    for pid, info in partitions.items():
        kinds = sorted({a["kind"] for a in alerts if a["partition"] == pid})
        info["alerts"] = kinds
        info["status"] = "alert" if kinds else "ok"
    return {
        "as_of": as_of,
        "env": env,
        "data": data,
        "overview": {
            "partitions": len(partitions),
            "in_alert": len(in_alert),
            "alerts": len(alerts),
            "stale": sum(r["status"] == "stale" for r in stale),
            "about_to_go_stale": sum(r["status"] == "about to go stale" for r in stale),
            "drifted": sum(
                any(a["kind"] == "drift" for a in alerts if a["partition"] == p) for p in partitions
            ),
            "forecasts_with_actuals": int(weekly["rows"].sum()) if len(weekly) else 0,
        },
        "alerts": alerts,
        "partitions_in_alert": in_alert,
        "retrain": retrain,
        "problems": problems,
        "partitions": partitions,
        "weekly": records(weekly),
        "rolling": records(rolling),
        "series": records(series),
        "drift": drift,
        "staleness": stale,
        "quality": quality,
        "runs": runs,
    }

"""Calibration of the monitoring alert bars on the demo: what undrifted partitions score by
chance in every monitoring round, and what the drifted one scores.

    make demo
    python benchmarks/drift_calibration.py --workdir work \
        --out benchmarks/results/drift_calibration.json

The demo runs monitoring at three dates (the first scoring, four weeks later, and the end); the
table the demo ends with is cut back to each date (actuals up to that round's last week, the
next ``horizon`` weeks as the weeks being forecast) and every prod champion's input drift is
measured against its stored profile, per feature, as ``manymodels monitor`` measures it; and the
served forecasts known at each date are scored against the actuals. Written: per round, per
feature type (history: lags and rolling means of the target; covariate; categorical), the largest
PSI / KS of the undrifted partitions and the drifted partition's; per partition the rolling
error, its standard error and the gate's bar. docs/monitoring.md explains the chosen defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from manymodels import registry
from manymodels.config import load_settings
from manymodels.data.partition import split_partitions
from manymodels.monitoring import accuracy, drift
from manymodels.monitoring.demo import ROUND_WEEKS
from manymodels.steps.condition import read_conditioned
from manymodels.steps.monitor import _champions, read_predictions


def feature_type(row: dict) -> str:
    return "categorical" if row.get("kind") == "categorical" else drift.feature_type(row["feature"])


def cut(table: pd.DataFrame, last: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """The table as a round at ``last`` saw it: actuals to ``last``, then the weeks forecast."""
    rows = table[table["week"] <= last + pd.Timedelta(weeks=horizon)].copy()
    rows.loc[rows["week"] > last, "units"] = np.nan
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=Path("work"))
    parser.add_argument("--drifted", default="north-texas.large.fast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings("pipelines", "prod", [f"project.workdir={args.workdir}"])
    store = registry.resolve_store(settings, local=True)
    table, manifest = read_conditioned(settings.path("conditioned"))
    final = pd.Timestamp(manifest["last_actual_week"])
    horizon = settings.data.horizon_weeks
    champs = _champions(store, settings)
    profiles = {p: registry.read_version_json(store, c["mv"], drift.PROFILE_FILE)
                for p, c in champs.items()}  # fmt: skip
    predictions, _ = read_predictions(settings, from_sql=False)
    m = settings.monitoring
    rounds = []
    for r in range(args.rounds):
        last = final - pd.Timedelta(weeks=ROUND_WEEKS * (args.rounds - 1 - r))
        parts = split_partitions(cut(table, last, horizon), settings.partition.keys)
        features = []
        for pid, ref in profiles.items():
            if ref is None or pid not in parts:
                continue
            window = drift.current_window(parts[pid], ref, m.drift.window_weeks)
            for row in drift.compare(ref, window, m.drift):
                if "psi" in row or "share_shift" in row:
                    features.append({"partition": pid, "type": feature_type(row), **row})
        known = table[table["week"] <= last]
        served = predictions[pd.to_datetime(predictions["scoring_date"]) <= last]
        joined = accuracy.join_actuals(served, known).joined
        rolling = accuracy.rolling_metrics(joined, m.accuracy.rolling_weeks)
        rounds.append({"last_actual_week": f"{last:%F}", "features": features,
                       "rolling": _last_rolling(rolling, champs, settings)})  # fmt: skip
    result = {"drifted": args.drifted, "rounds": [_summary(r, args.drifted) for r in rounds],
              "detail": [_top(r) for r in rounds]}  # fmt: skip
    text = json.dumps(result, indent=1, default=float)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    json.dump(result["rounds"], sys.stdout, indent=1, default=float)
    return 0


def _last_rolling(rolling: pd.DataFrame, champs: dict, settings) -> list[dict]:
    out = []
    if rolling.empty:
        return out
    for pid, g in rolling.sort_values("week").groupby("partition"):
        c = champs.get(pid)
        if c is None:
            continue
        keys = {k: c["tags"].get(k, "") for k in settings.partition.keys}
        rules = settings.training.gate.rules(keys)
        kind = c["tags"].get("model_kind", "ensemble")
        tail = g.tail(3)
        out.append({
            "partition": pid, "metric": rules.metric, "bar": rules.max_error,
            "backtest": float(c["tags"].get(f"{kind}_{rules.metric}", "nan")),
            "rows": int(tail["rows"].iloc[-1]), "actual": float(tail["actual"].iloc[-1]),
            "error": [round(float(v), 4) for v in tail[rules.metric]],
            "se": [round(float(v), 4) for v in tail[f"{rules.metric}_se"]],
        })  # fmt: skip
    return out


def _top(r: dict, n: int = 15) -> dict:
    """A round's rolling errors and its ``n`` numeric features with the largest KS."""
    numeric = sorted((f for f in r["features"] if "ks" in f), key=lambda f: -f["ks"])[:n]
    keep = ("partition", "type", "feature", "psi", "ks", "ks_pvalue", "rows")
    top = [{k: f[k] for k in keep} for f in numeric]
    return {"last_actual_week": r["last_actual_week"], "rolling": r["rolling"],
            "features_top_ks": top}  # fmt: skip


def _summary(r: dict, drifted: str) -> dict:
    frame = pd.DataFrame(r["features"])
    out = {"last_actual_week": r["last_actual_week"], "types": {}}
    for kind, g in frame.groupby("type"):
        col = "share_shift" if kind == "categorical" else "psi"
        rest, mine = g[g["partition"] != drifted], g[g["partition"] == drifted]
        entry = {f"undrifted_max_{col}": float(rest[col].max()),
                 f"undrifted_p99_{col}": float(rest[col].quantile(0.99)),
                 f"drifted_max_{col}": float(mine[col].max()) if len(mine) else None}  # fmt: skip
        if kind != "categorical":
            entry["undrifted_max_ks"] = float(rest["ks"].max())
            entry["drifted_max_ks"] = float(mine["ks"].max()) if len(mine) else None
            top = rest.sort_values("psi").tail(3)
            entry["undrifted_top"] = top[["partition", "feature", "psi", "ks"]].to_dict("records")
            entry["drifted"] = mine[["feature", "psi", "ks"]].to_dict("records")
        out["types"][kind] = entry
    return out


if __name__ == "__main__":
    raise SystemExit(main())

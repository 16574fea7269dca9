"""What a forecaster that knew the mock generator could reach 4 weeks ahead (a ceiling).

The mock demand (:mod:`manymodels.data.mock`) is Poisson around a log rate made of known parts
(level, each product's season, temperature, events, store growth) plus an AR(1) drift
(persistence 0.9 a week) and white noise. A forecast made 4 weeks ahead cannot know the drift's
last 4 shocks: the best it can do is the known parts plus 0.9^4 x the drift at the origin. This
script replays the generator's draws and scores that forecaster ("oracle_h4": true parameters,
the actual weekly temperature, the drift at the origin) and the one that knows the week's drift
too ("oracle_now", what the issue's 54% figure measured) on the backtest rows of
``benchmarks/peers.py project`` (its ``project.parquet``), against the same baseline.

    .venv/bin/python benchmarks/mock_ceiling.py --out work/bench-peers
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "code"))

from manymodels.data import mock  # noqa: E402
from manymodels.metrics import evaluate  # noqa: E402

HORIZON = 4


def rates(weeks: int = 520, seed: int = 42, start=dt.date(2017, 1, 2)) -> dict:
    """``{(store, product): (known_log_rate[w], drift[w])}`` replaying the generator's own
    :func:`manymodels.data.mock.log_rates` (the demo's sizes: 14 regions x 4 stores x 20
    products, 4 forecast weeks of weather)."""
    world = mock.draw_world(start=start, weeks=weeks, forecast_weeks=HORIZON, seed=seed)
    known, drifts = [], []
    for _, k, drift in mock.log_rates(world, start, weeks, seed):
        known.append(k)
        drifts.append(drift.copy())
    return {
        "stores": world.stores["store_id"].tolist(),
        "products": world.products["product_id"].tolist(),
        "known": np.stack(known),
        "drift": np.stack(drifts),
        "start": pd.Timestamp(start),
    }


def backtest_rows(out: Path) -> pd.DataFrame:
    """The backtest rows and the baseline's forecasts of them, without the ensemble (when
    ``peers.py project`` has not run): the panel ``peers.py`` cached, the project's origins."""
    from manymodels.config import load_settings  # noqa: PLC0415
    from manymodels.features import build_features  # noqa: PLC0415
    from manymodels.models import HistoricalAverageBaseline  # noqa: PLC0415
    from manymodels.training import backtest_windows, feature_settings  # noqa: PLC0415

    settings = load_settings(REPO / "pipelines", "dev", [])
    b, fs = settings.training.backtest, feature_settings(settings)
    table, parts = pd.read_parquet(out / "panel.parquet"), []
    for pid, frame in table.groupby("partition"):
        features = build_features(frame.drop(columns="partition"), **fs)
        known = features[features["units"].notna()]
        weeks = sorted(known["week"].unique())
        windows = backtest_windows(
            weeks, b.origins, b.step_weeks, settings.training.split.test_weeks
        )
        for k, window in enumerate(windows, start=1):
            train, test = known[known["week"] < window[0]], known[known["week"].isin(window)]
            base = HistoricalAverageBaseline().fit(train, train["units"])
            parts.append(
                test[["week", "store_id", "product_id", "units"]].assign(
                    origin=k, partition=pid, baseline=base.predict(test)
                )
            )
    return pd.concat(parts, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("work/bench-peers"))
    args = parser.parse_args(argv)
    project = args.out / "project.parquet"
    rows = pd.read_parquet(project) if project.exists() else backtest_rows(args.out)
    r = rates()
    w = ((rows["week"] - r["start"]).dt.days // 7).to_numpy()
    s = rows["store_id"].map({k: i for i, k in enumerate(r["stores"])}).to_numpy()
    p = rows["product_id"].map({k: i for i, k in enumerate(r["products"])}).to_numpy()
    known = r["known"][w, s, p]
    rows["oracle_now"] = np.exp(known + r["drift"][w, s, p])
    rows["oracle_h4"] = np.exp(known + mock.AR_PHI**HORIZON * r["drift"][w - HORIZON, s, p])
    out = {}
    for model in [m for m in ("oracle_now", "oracle_h4", "ensemble", "baseline") if m in rows]:
        per = []
        for pid, g in rows.groupby("partition"):
            base = evaluate(g["units"], g["baseline"])["mape"]
            e = evaluate(g["units"], g[model])
            kind = ".".join(x for x in pid.split(".") if x in ("large", "small", "fast", "slow"))
            per.append(
                {"kind": kind, "mape": e["mape"], "wape": e["wape"], "cut": 1 - e["mape"] / base}
            )
        per = pd.DataFrame(per).groupby("kind").median()
        out[model] = per.round(3).to_dict(orient="index")
    print(json.dumps(out, indent=2))  # noqa: T201 (a benchmark script's output)
    (args.out / "mock_ceiling.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

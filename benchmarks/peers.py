"""Benchmark: the project's ensemble and baseline against the tools a practitioner would use.

Every model forecasts the same rows: the weeks of the project's rolling-origin backtest
(``training.backtest`` and ``split.test_weeks``), each week 4 weeks ahead (``data.horizon_weeks``)
from the data known at that time, refitted at each origin; all scored with
:mod:`manymodels.metrics`. Three stages, because statsforecast, mlforecast and lightgbm need
pandas < 3 and live in their own environment (``make bench-peers`` creates ``.venv-peers``):

    .venv/bin/python benchmarks/peers.py project --out DIR          # ensemble + baseline
    .venv-peers/bin/python benchmarks/peers.py peers --out DIR      # statsforecast, mlforecast
    .venv/bin/python benchmarks/peers.py report --out DIR           # metrics, JSON, Markdown

``project`` keeps each member's forecasts (``member_<name>``). The members are fitted
independently, so ``reblend --source DIR`` weighs a superset run's members again under other
``training.ensemble`` settings (``--set``: member lists, weightings) without refitting, exactly
as the pipeline would; ``--extra SUFFIX=DIR`` adds another run's members as ``<name>SUFFIX``
(e.g. the network of a run with another ``training.random_state`` as ``nn_s1``). ``report
--previous JSON`` adds a previous result's models (its project models suffixed ``_previous``)
where the peers were not run again; ``report --origin K`` scores origin K's weeks alone (to
compare a one-origin profile with the defaults on the weeks both forecast). ``--profile FILE``
(project, reblend) applies a settings profile before ``--set``, as the steps do.

``--panel mock`` (default) is the demo's mock panel (56 partitions of 20 series x 520 weeks);
``--panel PATH`` takes any conditioned standard table as parquet (``manymodels condition``
output) and partitions it by ``--keys``. ``--sample N`` keeps the first N partitions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "code"))  # the peers environment does not install the project

from manymodels.metrics import evaluate  # noqa: E402 (numpy only: importable in both envs)

KEYS = ["week", "store_id", "product_id"]
PROJECT = ("ensemble", "ensemble_loo", "baseline")
SEASON = 52


def load_panel(panel: str, keys: list[str], sample: int, weeks: int = 520) -> pd.DataFrame:
    """The conditioned standard table of the panel, with a ``partition`` column.

    Raises:
        ValueError: a conditioned parquet lacks a column the benchmark needs.
    """
    if panel == "mock":  # the demo's mock sources, conditioned as `manymodels condition` does
        from manymodels.config import load_settings  # noqa: PLC0415
        from manymodels.data.condition import condition  # noqa: PLC0415
        from manymodels.data.sources import read_sources  # noqa: PLC0415
        from manymodels.steps.mock import generate_into  # noqa: PLC0415

        settings = load_settings(REPO / "pipelines", "dev", [f"mock.weeks={weeks}"])
        with tempfile.TemporaryDirectory() as tmp:
            generate_into(settings, Path(tmp), start=dt.date(2017, 1, 2))
            table, _ = condition(
                read_sources(settings.sources, tmp),
                settings.data,
                settings.partition.slow_zero_share,
                settings.training.split.test_weeks,
            )
    else:
        table = pd.read_parquet(panel)
    need = ["week", "store_id", "product_id", "units", *keys]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(
            f"{panel}: lacks column(s) {missing}: pass a conditioned standard table "
            "(manymodels condition) and partition keys it has (--keys)"
        )
    table = table.assign(partition=table[keys].astype(str).agg(".".join, axis=1))
    if sample:
        chosen = sorted(table["partition"].unique())[:sample]
        table = table[table["partition"].isin(chosen)]
    return table.reset_index(drop=True)


def _settings(config_dir: Path, overrides: list[str], profiles: list[Path]):
    """The dev settings with the profiles' overrides, then ``overrides`` (as a step's
    ``--profile`` and ``--set``)."""
    from manymodels.config import load_settings  # noqa: PLC0415
    from manymodels.profiles import profile_overrides  # noqa: PLC0415

    return load_settings(config_dir, "dev", [*profile_overrides(*profiles), *overrides])


def run_project(
    table: pd.DataFrame,
    out: Path,
    workers: int,
    config_dir: Path,
    overrides: list[str],
    *,
    profiles: list[Path] = (),
) -> dict:
    """The ensemble and the baseline through the project's own backtest, per partition."""
    from manymodels.parallel import run_partitions  # noqa: PLC0415

    settings = _settings(config_dir, overrides, list(profiles))
    tasks = {
        pid: (frame.drop(columns="partition"), pid, settings)
        for pid, frame in table.groupby("partition", sort=True)
    }
    start, cpu0 = time.perf_counter(), _cpu()
    outcomes = run_partitions(_fit_partition, tasks, workers)
    wall, cpu = time.perf_counter() - start, _cpu() - cpu0
    failed = {p: o.error for p, o in outcomes.items() if not o.ok}
    if failed:
        raise RuntimeError(f"partitions failed: {failed}")
    rows = pd.concat([o.value for o in outcomes.values()], ignore_index=True)
    rows.to_parquet(out / "project.parquet", index=False)
    timing = {"ensemble": {"fit_wall_seconds": wall, "cpu_seconds": cpu, "note": "with baseline"}}
    (out / "project_timing.json").write_text(json.dumps(timing, indent=2))
    return timing


def _fit_partition(frame: pd.DataFrame, pid: str, settings) -> pd.DataFrame:
    import torch  # noqa: PLC0415

    from manymodels.training import train_partition  # noqa: PLC0415

    torch.set_num_threads(1)
    fit = train_partition(frame, pid, settings)
    scored = fit.test.assign(partition=pid)
    bounds = fit.ensemble.intervals
    out = scored[[*KEYS, "units", "origin", "partition", "ensemble", "baseline"]].copy()
    keys = {k: str(frame[k].iloc[0]) for k in settings.partition.keys if k in frame}
    weighting = settings.training.ensemble.weighting_for(keys)
    out["ensemble_loo"] = _leave_origin_out(scored, list(fit.weights), weighting)
    for member in fit.weights:  # each member's own forecasts (to study blends offline)
        out[f"member_{member}"] = scored[member].to_numpy()
    # out-of-sample intervals: calibrate on the other origins (as ensemble_coverage does)
    out["p10"], out["p90"] = np.nan, np.nan
    from manymodels.models.intervals import ConformalIntervals  # noqa: PLC0415

    for origin in out["origin"].unique():
        held = out["origin"] == origin
        calib = out[~held] if out["origin"].nunique() > 1 else out
        model = ConformalIntervals(bounds.coverage).fit(calib["units"], calib["ensemble"])
        b = model.predict(out.loc[held, "ensemble"]).to_numpy()
        out.loc[held, "p10"], out.loc[held, "p90"] = b[:, 0], b[:, 2]
    return out


def reblend(
    source: Path,
    out: Path,
    config_dir: Path,
    overrides: list[str],
    *,
    extra: dict[str, Path] | None = None,
    profiles: list[Path] = (),
) -> dict:
    """The ensemble columns of ``source``'s ``project.parquet`` again, from its ``member_*``
    forecasts, with the members and weighting that ``training.ensemble`` gives each partition.
    ``extra`` (``{suffix: folder}``): other project runs of the same rows whose members join
    as ``member_<name><suffix>``.

    Raises:
        ValueError: a partition's members include one no source ran, or an ``extra`` run
            forecast other rows.
    """
    from manymodels.models.ensemble import learn_weights  # noqa: PLC0415
    from manymodels.models.intervals import ConformalIntervals  # noqa: PLC0415

    settings = _settings(config_dir, overrides, list(profiles))
    ensemble, coverage = settings.training.ensemble, settings.training.intervals.coverage
    table = pd.read_parquet(source / "panel.parquet")
    rows, parts = _with_extra(pd.read_parquet(source / "project.parquet"), extra or {}), []
    for pid, group in rows.groupby("partition", sort=True):
        first = table[table["partition"] == pid].iloc[0]
        keys = {k: str(first[k]) for k in settings.partition.keys if k in first}
        members = list(ensemble.members_for(keys))
        missing = [m for m in members if f"member_{m}" not in group]
        if missing:
            raise ValueError(f"{source}: partition {pid} has no forecasts of member(s) {missing}")
        scored = group.rename(columns={f"member_{m}": m for m in members})
        weighting = ensemble.weighting_for(keys)
        weights = learn_weights(scored[members], scored["units"], weighting)
        scored["ensemble"] = np.clip(scored[members].to_numpy() @ list(weights.values()), 0, None)
        blend = scored[[*KEYS, "units", "origin", "partition", "ensemble", "baseline"]].copy()
        blend["ensemble_loo"] = _leave_origin_out(scored, members, weighting)
        for member in members:
            blend[f"member_{member}"] = scored[member].to_numpy()
        blend["p10"], blend["p90"] = np.nan, np.nan
        for origin in blend["origin"].unique():
            held = blend["origin"] == origin
            calib = blend[~held] if blend["origin"].nunique() > 1 else blend
            model = ConformalIntervals(coverage).fit(calib["units"], calib["ensemble"])
            b = model.predict(blend.loc[held, "ensemble"]).to_numpy()
            blend.loc[held, "p10"], blend.loc[held, "p90"] = b[:, 0], b[:, 2]
        parts.append(blend)
    pd.concat(parts, ignore_index=True).to_parquet(out / "project.parquet", index=False)
    # no fit time: the source fitted other members (measure cost with benchmarks/member_cost.py)
    (out / "project_timing.json").write_text("{}\n")
    return {"reblended": str(source), "partitions": len(parts)}


def _with_extra(rows: pd.DataFrame, extra: dict[str, Path]) -> pd.DataFrame:
    """``rows`` with the ``member_*`` columns of each extra run, renamed ``member_<name><suffix>``.

    Raises:
        ValueError: an extra run's rows are not ``rows``' rows.
    """
    on = [*KEYS, "origin"]
    for suffix, folder in extra.items():
        other = pd.read_parquet(folder / "project.parquet")
        members = [c for c in other if c.startswith("member_")]
        other = other[[*on, *members]].rename(columns={m: f"{m}{suffix}" for m in members})
        if len(other) != len(rows):
            raise ValueError(f"{folder}: {len(other)} backtest rows, not the source's {len(rows)}")
        rows = rows.merge(other, on=on, how="left", validate="one_to_one")
        if rows[[f"{m}{suffix}" for m in members]].isna().any().any():
            raise ValueError(f"{folder}: forecasts other rows than the source (other origins?)")
    return rows


def _leave_origin_out(scored: pd.DataFrame, members: list[str], weighting) -> np.ndarray:
    """The ensemble's forecasts of each origin with weights learned on the other origins only
    (the pipeline learns them on all origins: this shows what that optimism is worth)."""
    from manymodels.models.ensemble import learn_weights  # noqa: PLC0415

    blend = scored["ensemble"].to_numpy(dtype=float).copy()
    if scored["origin"].nunique() < 2:  # noqa: PLR2004
        return blend
    for origin in scored["origin"].unique():
        held = (scored["origin"] == origin).to_numpy()
        rest = scored[~held]
        w = learn_weights(rest[members], rest["units"], weighting)
        blend[held] = np.clip(scored.loc[held, members].to_numpy() @ list(w.values()), 0, None)
    return blend


def run_peers(
    table: pd.DataFrame, out: Path, origins: list[dict], horizon: int, skip: tuple[str, ...] = ()
) -> dict:
    """statsforecast and mlforecast on the backtest rows of :func:`run_project`."""
    import lightgbm  # noqa: F401, PLC0415  (fail early when the peers environment is wrong)
    from mlforecast import MLForecast  # noqa: PLC0415
    from mlforecast.lag_transforms import RollingMean  # noqa: PLC0415
    from statsforecast import StatsForecast  # noqa: PLC0415
    from statsforecast.models import (  # noqa: PLC0415
        TSB,
        AutoETS,
        AutoTheta,
        CrostonSBA,
        SeasonalNaive,
    )

    df = table.assign(unique_id=table["store_id"].astype(str) + "|" + table["product_id"])
    df = df[df["units"].notna()].rename(columns={"week": "ds", "units": "y"})
    df = df[["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"])
    n_windows = sum(o["weeks"] for o in origins)
    refit = origins[0]["weeks"]  # one fit per origin, forward filtering within its window
    last = df["ds"].max()
    first_test = min(o["start"] for o in origins)
    # the windows are contiguous when step_weeks == test_weeks (the default)
    test_weeks = sorted(df.loc[df["ds"] >= first_test, "ds"].unique())
    timing, frames = {}, []
    # weekly, anchored on the panel's week start (Monday for the mock data, any day for BYOD)
    freq = "W-" + pd.Timestamp(df["ds"].iloc[0]).day_name()[:3].upper()
    stats = {
        "seasonal_naive": SeasonalNaive(season_length=SEASON),
        "auto_ets": AutoETS(season_length=SEASON),
        "auto_theta": AutoTheta(season_length=SEASON),
        "croston_sba": CrostonSBA(),
        "tsb": TSB(alpha_d=0.2, alpha_p=0.2),
    }
    # AutoETS/AutoTheta on the last ~3 years (minutes on all 520 weeks); seasonal naive needs 1
    recent = df[df["ds"] > last - pd.Timedelta(weeks=3 * SEASON + n_windows + horizon)]
    for name, model in stats.items():
        if name in skip:
            continue
        data = df if name == "seasonal_naive" else recent
        start, cpu0 = time.perf_counter(), time.process_time()
        sf = StatsForecast(models=[model], freq=freq, n_jobs=1)
        # intermittent-demand models cannot forward-filter: refit them at every week (cheap)
        every = refit if hasattr(model, "forward") else True
        cv = sf.cross_validation(
            df=data, h=horizon, step_size=1, n_windows=n_windows + horizon - 1, refit=every
        )
        timing[name] = {
            "fit_wall_seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu0,
        }
        frames.append(_horizon_rows(cv, horizon, test_weeks, name))
    for name, objective in (("lightgbm_l2", "l2"), ("lightgbm_tweedie", "tweedie")):
        if name in skip:
            continue
        start, cpu0 = time.perf_counter(), time.process_time()
        mlf = MLForecast(
            models={
                name: lightgbm.LGBMRegressor(
                    objective=objective,
                    n_estimators=300,
                    learning_rate=0.05,
                    num_threads=1,
                    verbose=-1,
                )
            },
            freq=freq,
            lags=[1, 2, 3, 4, 8, 13, 52],
            lag_transforms={1: [RollingMean(4), RollingMean(13)], 52: [RollingMean(4)]},
            date_features=["week"],
        )
        cv = mlf.cross_validation(
            df=df, h=horizon, n_windows=n_windows + horizon - 1, step_size=1, refit=refit
        )
        timing[name] = {
            "fit_wall_seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu0,
        }
        frames.append(_horizon_rows(cv, horizon, test_weeks, name))
    peers = frames[0]
    for frame in frames[1:]:
        peers = peers.merge(frame, on=["unique_id", "ds"], how="outer")
    peers.to_parquet(out / "peers.parquet", index=False)
    (out / "peers_timing.json").write_text(json.dumps(timing, indent=2))
    return timing


def _horizon_rows(cv: pd.DataFrame, horizon: int, weeks: list, name: str) -> pd.DataFrame:
    """The forecasts made ``horizon`` weeks before each test week (the project's design)."""
    cv = cv.reset_index() if "unique_id" not in cv.columns else cv
    ahead = cv[(cv["ds"] - cv["cutoff"]) == pd.Timedelta(weeks=horizon)]
    ahead = ahead[ahead["ds"].isin(weeks)]
    column = next(c for c in cv.columns if c not in {"unique_id", "ds", "cutoff", "y"})
    return ahead[["unique_id", "ds", column]].rename(columns={column: name})


def report(
    out: Path, table_meta: dict, previous: Path | None = None, origin: int | None = None
) -> dict:
    """Metrics per model: pooled and per partition kind; JSON and a Markdown table. With
    ``previous`` (a result JSON of the same panel and origins), its models join the result:
    the peers as they are, the project's models suffixed ``_previous``. With ``origin``, only
    that origin's rows are scored (intervals included).

    Raises:
        ValueError: ``origin`` is not one of the run's, or ``previous`` scored other rows.
    """
    rows = pd.read_parquet(out / "project.parquet")
    if origin is not None:
        rows = _only_origin(rows, origin, out)
        table_meta = table_meta | {"origins": 1, "origin": origin}
    timing = json.loads((out / "project_timing.json").read_text())
    models = ["ensemble", "baseline"] + (["ensemble_loo"] if "ensemble_loo" in rows else [])
    if (out / "peers.parquet").exists():
        peers = pd.read_parquet(out / "peers.parquet")
        rows = rows.assign(unique_id=rows["store_id"].astype(str) + "|" + rows["product_id"])
        rows = rows.merge(
            peers.rename(columns={"ds": "week"}), on=["unique_id", "week"], how="left"
        )
        peer_models = [c for c in peers.columns if c not in ("unique_id", "ds")]
        missing = rows[peer_models].isna().sum()
        if missing.any():
            raise ValueError(f"peer forecasts missing for some backtest rows: {missing.to_dict()}")
        rows["best_peer_per_series"] = _best_per_series(rows, peer_models)
        models += [*peer_models, "best_peer_per_series"]
        timing |= json.loads((out / "peers_timing.json").read_text())
    rows[models] = rows[models].clip(lower=0)
    parts = []
    for pid, group in rows.groupby("partition"):
        for model in models:
            parts.append(
                {"partition": pid, "model": model, **evaluate(group["units"], group[model])}
            )
    per = pd.DataFrame(parts)
    per["kind"] = per["partition"].map(_kind)
    series = rows.groupby(["store_id", "product_id"]).ngroups
    summary = {}
    base = per[per["model"] == "baseline"].set_index("partition")["mape"]
    for model in models:
        mine = per[per["model"] == model].set_index("partition")
        reduction = (base - mine["mape"]) / base
        entry = {
            "pooled_wape": evaluate(rows["units"], rows[model])["wape"],
            "median_mape": float(mine["mape"].median()),
            "median_wape": float(mine["wape"].median()),
            "median_mape_reduction_vs_baseline": float(reduction.median()),
            "by_kind": {},
        }
        for kind, group in mine.groupby("kind"):
            entry["by_kind"][kind] = {
                "median_mape": float(group["mape"].median()),
                "median_wape": float(group["wape"].median()),
                "median_rmse_zero": float(group["rmse_zero"].median()),
                "median_mape_reduction_vs_baseline": float(reduction[group.index].median()),
            }
        t = timing.get(model)
        if t:
            entry["fit_wall_seconds"] = t["fit_wall_seconds"]
            entry["vcpu_seconds_per_series"] = t["cpu_seconds"] / series
        summary[model] = entry
    inside = (rows["units"] >= rows["p10"]) & (rows["units"] <= rows["p90"])
    summary["ensemble"]["p10_p90_coverage"] = float(inside.mean())
    if previous is not None:
        before = json.loads(previous.read_text())
        if (before["rows"], before["origins"]) != (len(rows), table_meta["origins"]):
            raise ValueError(f"{previous}: another panel or other origins than {out}")
        for name, entry in before["models"].items():
            if name.endswith("_previous"):
                continue
            summary.setdefault(f"{name}_previous" if name in PROJECT else name, entry)
        table_meta = table_meta | {
            "note": f"the project's models measured at measured_at; *_previous and the peers "
            f"from {previous.name} ({before['measured_at']}), same panel, origins and metrics"
        }
    result = {
        **table_meta,
        "rows": len(rows),
        "series": series,
        "partitions": int(rows["partition"].nunique()),
        "models": summary,
        "targets": targets(summary),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (out / "peers.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "peers.md").write_text(markdown(result))
    return result


# issue 14's targets: (name, metric, which kinds, lower is better?); a bound where no peer
MAPE_REDUCTION, COVERAGE = 0.40, (0.75, 0.85)
TARGETS = (
    ("median WAPE <= the best peer's", "median_wape", "all", True),
    ("median MAPE <= the best peer's", "median_mape", "fast", True),
    (
        "median MAPE reduction vs the baseline >= 40%",
        "median_mape_reduction_vs_baseline",
        "fast",
        None,
    ),
    ("RMSE on zero weeks <= the best peer's", "median_rmse_zero", "slow", True),
)


def targets(models: dict) -> list[dict]:
    """Issue 14's targets, each against the ensemble (as the pipeline weighs it) and its
    leave-one-origin-out variant: the figure, the best peer's, met or not. Peers are the
    models the project did not make (not ``*_previous``, not the in-hindsight oracle)."""
    own = {*PROJECT, "best_peer_per_series"}
    peers = {n: m for n, m in models.items() if n not in own and not n.endswith("_previous")}
    mine = {n: models[n] for n in ("ensemble", "ensemble_loo") if n in models}

    def row(target, kind, values, best=None, ok=None):
        peer = min(best.items(), key=lambda kv: kv[1]) if best else (None, None)
        met = {n: bool(ok(v)) for n, v in values.items()}
        return {"target": target, "kind": kind, **values, "best_peer": peer[0],
                "best_peer_value": peer[1], "met": met}  # fmt: skip

    out = []
    if peers:
        best = {n: m["pooled_wape"] for n, m in peers.items()}
        low = min(best.values())
        values = {n: m["pooled_wape"] for n, m in mine.items()}
        out.append(row("pooled WAPE <= the best peer's", "all", values, best, lambda v: v <= low))
    kinds = sorted({k for m in mine.values() for k in m["by_kind"]})
    for target, metric, which, lower in TARGETS:
        for kind in kinds:
            if which != "all" and which not in kind.split("."):
                continue
            values = {n: m["by_kind"][kind][metric] for n, m in mine.items()}
            if lower is None:
                out.append(row(target, kind, values, ok=lambda v: v >= MAPE_REDUCTION))
                continue
            best = {n: m["by_kind"][kind][metric] for n, m in peers.items() if kind in m["by_kind"]}
            best = {n: v for n, v in best.items() if not np.isnan(v)}
            if best:
                low = min(best.values())
                out.append(row(target, kind, values, best, lambda v, low=low: v <= low))
    if "p10_p90_coverage" in models.get("ensemble", {}):
        cover = {"ensemble": models["ensemble"]["p10_p90_coverage"]}
        out.append(
            row("P10-P90 coverage in 75-85% (out of sample)", "all", cover,
                ok=lambda v: COVERAGE[0] <= v <= COVERAGE[1])
        )  # fmt: skip
    return out


def _only_origin(rows: pd.DataFrame, origin: int, out: Path) -> pd.DataFrame:
    if origin not in set(rows["origin"]):
        raise ValueError(f"{out}: no origin {origin} (has {sorted(set(rows['origin']))})")
    return rows[rows["origin"] == origin].reset_index(drop=True)


def _best_per_series(rows: pd.DataFrame, models: list[str]) -> pd.Series:
    """An oracle, not a forecaster: each series' forecasts by the model with its lowest MAPE
    (WAPE where it never sold) on these very rows, as if one knew in advance which peer suits
    which series: what per-series model selection among the peers could reach at best."""
    err = rows[models].sub(rows["units"], axis=0).abs()
    sold = rows["units"] > 0
    relative = err.div(rows["units"].where(sold), axis=0)
    by = rows["unique_id"]
    score = relative.groupby(by).mean().fillna(err.groupby(by).sum())
    pick = rows["unique_id"].map(score.idxmin(axis=1))
    values = rows[models].to_numpy()
    return pd.Series(values[np.arange(len(rows)), pick.map(models.index).to_numpy()], rows.index)


def markdown(result: dict) -> str:
    """The results as Markdown tables (overall, then by partition kind)."""
    models = result["models"]
    lines = [
        f"Panel `{result['panel']}`: {result['partitions']} partitions, {result['series']} "
        f"series, {result['rows']} backtest rows ({result['origins']} origins x "
        f"{result['test_weeks']} weeks, {result['horizon']}-week-ahead).",
        "",
        "| model | pooled WAPE | median MAPE | median WAPE | median MAPE reduction vs "
        "baseline | fit, wall | vCPU-s per series |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in models.items():
        wall = f"{m['fit_wall_seconds']:.1f} s" if "fit_wall_seconds" in m else "—"
        cpu = f"{m['vcpu_seconds_per_series']:.3f}" if "vcpu_seconds_per_series" in m else "—"
        lines.append(
            f"| {name} | {m['pooled_wape']:.3f} | {m['median_mape']:.3f} | "
            f"{m['median_wape']:.3f} | {m['median_mape_reduction_vs_baseline']:.1%} | {wall} | "
            f"{cpu} |"
        )
    kinds = sorted({k for m in models.values() for k in m["by_kind"]})
    lines += [
        "",
        "Median per partition kind: MAPE / WAPE / RMSE on zero weeks (RMSE0)",
        "",
        "| model | " + " | ".join(kinds) + " |",
        "|---|" + "---|" * len(kinds),
    ]
    for name, m in models.items():
        cells = []
        for kind in kinds:
            k = m["by_kind"].get(kind)
            cells.append(
                "—"
                if k is None
                else f"{k['median_mape']:.3f} / {k['median_wape']:.3f} / "
                f"{k['median_rmse_zero']:.2f}"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "p10_p90_coverage" in models["ensemble"]:
        lines += [
            "",
            f"Ensemble P10-P90 coverage (out of sample, leaving one origin out): "
            f"{models['ensemble']['p10_p90_coverage']:.1%}.",
        ]
    if result.get("targets"):
        lines += [
            "",
            "Issue 14's targets (ensemble as the pipeline weighs it; LOO: weights from the other "
            "origin)",
            "",
            "| target | kind | ensemble | LOO | best peer | met (ensemble / LOO) |",
            "|---|---|---|---|---|---|",
        ]
        for t in result["targets"]:
            pct = "%" in t["target"]  # the reduction and the coverage
            cells = [_num(t.get(n), pct) for n in ("ensemble", "ensemble_loo")]
            peer = f"{_num(t['best_peer_value'])} ({t['best_peer']})" if t["best_peer"] else "—"
            met = " / ".join("yes" if v else "**no**" for v in t["met"].values())
            lines.append(f"| {t['target']} | {t['kind']} | {' | '.join(cells)} | {peer} | {met} |")
    return "\n".join(lines) + "\n"


def _num(value, percent: bool = False) -> str:
    return "—" if value is None else f"{value:.1%}" if percent else f"{value:.3f}"


def _kind(pid: str) -> str:
    parts = pid.split(".")
    size = next((p for p in parts if p in ("large", "small")), "")
    speed = next((p for p in parts if p in ("fast", "slow")), "")
    return ".".join(p for p in (size, speed) if p) or "all"


def _cpu() -> float:
    self_, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return self_.ru_utime + self_.ru_stime + kids.ru_utime + kids.ru_stime


def _origins(table: pd.DataFrame) -> tuple[list[dict], dict]:
    """The backtest origins of the project's settings, read from the project's rows."""
    rows = pd.read_parquet(table) if isinstance(table, Path) else table
    origins = [
        {"origin": int(k), "start": g["week"].min(), "weeks": int(g["week"].nunique())}
        for k, g in rows.groupby("origin")
    ]
    return origins, {"origins": len(origins), "test_weeks": origins[0]["weeks"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stage", choices=["project", "peers", "reblend", "report"])
    parser.add_argument("--panel", default="mock", help="'mock' or a conditioned parquet file")
    parser.add_argument("--keys", default="region,store_format,speed", help="partition keys")
    parser.add_argument("--sample", type=int, default=0, help="only the first N partitions")
    parser.add_argument("--workers", type=int, default=0, help="project: processes (0: cores)")
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("work/bench-peers"))
    parser.add_argument(
        "--config-dir", type=Path, default=REPO / "pipelines", help="project: the pipelines"
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="project: a setting"
    )
    parser.add_argument(
        "--skip", default="", help="peers: models to leave out, comma-separated (e.g. auto_ets)"
    )
    parser.add_argument(
        "--source", type=Path, help="reblend: the output folder of a project run with the members"
    )
    parser.add_argument(
        "--previous", type=Path, help="report: a result JSON whose peers were not run again"
    )
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="SUFFIX=DIR",
        help="reblend: another project run's members, as <name>SUFFIX (e.g. _s1=work/nn_s1)",
    )
    parser.add_argument("--origin", type=int, help="report: score this origin's weeks alone")
    parser.add_argument(
        "--profile", action="append", default=[], type=Path, help="project, reblend: a profile"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "reblend":
        if args.source is None:
            parser.error("reblend needs --source (a project run's output folder)")
        if any("=" not in e for e in args.extra):
            parser.error("--extra takes SUFFIX=DIR, e.g. _s1=work/nn_s1")
        extra = {k: Path(v) for k, v in (e.split("=", 1) for e in args.extra)}
        done = reblend(
            args.source, args.out, args.config_dir, args.set, extra=extra, profiles=args.profile
        )
        print(json.dumps(done, indent=2))  # noqa: T201
        return 0
    if args.stage == "report":
        _, meta = _origins(args.out / "project.parquet")
        meta |= {"panel": args.panel, "horizon": args.horizon}
        result = report(args.out, meta, args.previous, args.origin)
        print(markdown(result))  # noqa: T201 (a benchmark script's output)
        return 0
    cached = args.out / "panel.parquet"  # the mock panel takes minutes to generate: once
    what = {"panel": args.panel, "keys": args.keys, "sample": args.sample}
    made = args.out / "panel.json"
    if cached.exists() and made.exists() and json.loads(made.read_text()) == what:
        table = pd.read_parquet(cached)
    else:
        table = load_panel(args.panel, args.keys.split(","), args.sample)
        table.to_parquet(cached, index=False)
        made.write_text(json.dumps(what))
    if args.stage == "project":
        timing = run_project(
            table, args.out, args.workers, args.config_dir, args.set, profiles=args.profile
        )
    else:
        origins, _ = _origins(args.out / "project.parquet")
        skip = tuple(filter(None, args.skip.split(",")))
        timing = run_peers(table, args.out, origins, args.horizon, skip)
    print(json.dumps(timing, indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Step ``evaluate``: the gate (see :mod:`manymodels.gate`) for every trained partition.

Each partition's current champion is loaded from the registry and scored on the SAME backtest
weeks as the candidate: the weeks of the backtest origins it never trained on, against the
candidate's backtest forecasts; or, when it trained on them all, all backtest weeks against the
candidate's deployed model (see :mod:`manymodels.gate`). Writes ``<workdir>/reports/gate.json``
and ``gate.md`` (a table that also suits a GitHub job summary) and logs both to the pipeline's
MLflow run.
"""

from __future__ import annotations

import logging

import pandas as pd

from manymodels import registry
from manymodels.config import GateSettings
from manymodels.features import build_features
from manymodels.gate import Verdict, judge
from manymodels.io import read_json, write_json, write_text
from manymodels.metrics import evaluate
from manymodels.pyfunc import PackedModel
from manymodels.report import fmt, markdown_table
from manymodels.steps import base_parser, guarded, settings_from, setup_logging

__all__ = ["champion_comparison", "champion_metrics", "main", "render_gate"]

log = logging.getLogger(__name__)
MARK = {True: "✅", False: "❌", None: "–"}


def champion_metrics(
    packed: PackedModel, frame: pd.DataFrame, test_weeks: list[str]
) -> dict[str, float]:
    """Metrics of a registered model on the given weeks of ``frame``, built its own way."""
    features = build_features(frame, **packed.features)
    test = features[features["week"].isin(pd.to_datetime(test_weeks)) & features["units"].notna()]
    return evaluate(test["units"], packed.predict(test))


def champion_comparison(
    packed: PackedModel, frame: pd.DataFrame, backtest: pd.DataFrame
) -> tuple[dict[str, float], dict[str, float], str]:
    """``(champion metrics, candidate metrics, basis)`` on the same backtest weeks.

    ``backtest`` holds the candidate's backtest rows (``week``, keys, ``units``, ``ensemble``
    and ``deployed_ensemble``). The weeks after the champion's ``trained_through`` compare it
    with the candidate's out-of-sample forecasts; when there are none, all backtest weeks
    compare the two deployed models (both saw them).

    Raises:
        ValueError: the champion cannot build its features from ``frame`` or lacks columns.
        KeyError: the backtest rows lack a column.
    """
    weeks = pd.to_datetime(backtest["week"])
    through = getattr(packed, "trained_through", "")
    unseen = weeks > pd.Timestamp(through) if through else pd.Series(False, index=weeks.index)
    if unseen.any():
        rows, column = backtest[unseen.to_numpy()], "ensemble"
        basis = "weeks the champion never saw"
    else:
        rows, column = backtest, "deployed_ensemble"
        basis = "backtest weeks (both trained on them)"
    rows = rows.drop_duplicates(["week", "store_id", "product_id"])
    features = build_features(frame, **packed.features)
    keys = ["week", "store_id", "product_id"]
    joined = rows.assign(week=pd.to_datetime(rows["week"])).merge(
        features[features["units"].notna()], on=keys, suffixes=("", "_f")
    )
    if joined.empty:
        raise ValueError("none of the backtest weeks is in the partition's data")
    champion = evaluate(joined["units"], packed.predict(joined))
    return champion, evaluate(joined["units"], joined[column]), basis


def render_gate(verdicts: list[Verdict], gate: GateSettings, header: dict) -> str:
    """The gate report in Markdown: thresholds, counts per decision, and one row per partition."""
    counts = pd.Series([v.decision for v in verdicts]).value_counts().to_dict() if verdicts else {}
    special = ""
    for o in gate.overrides:
        special += f"; for {o.key} = {o.value}: {_bars(gate.rules({o.key: o.value}))}"
    lines = [
        "## Model gate",
        "",
        f"run mode **{gate.run_mode}**; metrics pooled over the backtest origins; bars: "
        f"{_bars(gate.rules({}))}{special}; never worse than the champion by more than "
        f"{gate.champion_tolerance:.0%} on the same weeks",
        "",
        " · ".join(f"{k}: **{v}**" for k, v in {**header, **counts}.items()),
        "",
    ]
    rows = [
        {
            **v.as_dict(),
            **{k: MARK[c] for k, c in v.checks.items()},
            "improvement": fmt(v.improvement * 100, 1) + "%",
        }
        for v in verdicts
    ]
    cols = [
        "partition",
        "metric",
        "error",
        "baseline_error",
        "improvement",
        "rmse_zero",
        "baseline_rmse_zero",
        "champion_error",
        "error_target",
        "beats_baseline",
        "zero_weeks",
        "not_worse_than_champion",
        "decision",
        "reason",
    ]
    heads = [
        "partition",
        "metric",
        "error",
        "baseline",
        "vs baseline",
        "RMSE0",
        "baseline RMSE0",
        "champion",
        "target",
        "beats baseline",
        "zero weeks",
        "vs champion",
        "decision",
        "why",
    ]
    return "\n".join(lines) + markdown_table(rows, cols, heads)


def _bars(rules) -> str:
    text = (
        f"{rules.metric.upper()} <= {rules.max_error}, {rules.metric.upper()} reduction vs "
        f"baseline >= {rules.min_improvement:.0%}"
    )
    if rules.max_rmse_zero_vs_baseline is not None:
        text += f", RMSE0 <= {rules.max_rmse_zero_vs_baseline:g} x the baseline's"
    return text


@guarded
def main(argv: list[str] | None = None) -> int:
    parser = base_parser("evaluate", __doc__)
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    training = read_json(settings.path("runs", "training.json"), step="train")
    store = registry.resolve_store(settings, local=training["local"])
    gate = settings.training.gate
    verdicts, records = [], {}
    names = {pid: registry.model_name(settings, pid) for pid in training["partitions"]}
    # every champion in one search (a page per 1,000 models), not a look-up per partition
    held = registry.champions(store, settings.mlflow.model_prefix, list(names.values()))
    for pid, part in training["partitions"].items():
        name = names[pid]
        champion = held.get(name)
        if part["status"] != "trained":
            records[pid] = {
                "decision": "training_failed",
                "reason": part.get("error", ""),
                "champion_version": champion.version if champion else None,
            }
            continue
        compared, candidate = None, None
        if champion is not None:
            try:
                packed = registry.load(store, name, version=champion.version)
                frame = pd.read_parquet(settings.path("partitions", f"{pid}.parquet"))
                backtest = pd.read_parquet(part["backtest_file"])
                compared, candidate, basis = champion_comparison(packed, frame, backtest)
                log.info("evaluate: %s: champion v%s compared on %s", pid, champion.version, basis)
            except (ValueError, KeyError) as exc:  # e.g. the champion expects other features
                log.warning(
                    "evaluate: %s: champion v%s could not be scored (%s): not compared",
                    pid,
                    champion.version,
                    exc,
                )
        verdict = judge(
            pid,
            part["metrics"],
            gate,
            keys=part["keys"],
            champion_version=champion.version if champion else None,
            champion_metrics=compared,
            candidate_metrics=candidate,
        )
        verdicts.append(verdict)
        records[pid] = verdict.as_dict()
    header = {"partitions": len(training["partitions"]), "data version": training["data_version"]}
    report = render_gate(verdicts, gate, header)
    failed = [p for p, r in records.items() if r["decision"] == "training_failed"]
    if failed:
        report += "\nTraining failed (champion, if any, keeps serving): " + ", ".join(failed) + "\n"
    reports = settings.path("reports")
    write_json(
        {
            "run_mode": gate.run_mode,
            "parent_run_id": training["parent_run_id"],
            "partitions": records,
        },
        reports / "gate.json",
    )
    write_text(report, reports / "gate.md")
    for path in (reports / "gate.json", reports / "gate.md"):
        registry.log_artifact(store, training["parent_run_id"], path, "gate")
    counts = pd.Series([r["decision"] for r in records.values()]).value_counts().to_dict()
    registry.log_metrics(
        store, training["parent_run_id"], {f"gate_{k}": v for k, v in counts.items()}
    )
    log.info("\n%s", report)
    log.info(
        "evaluate: %s; report: %s",
        ", ".join(f"{k} {v}" for k, v in counts.items()),
        reports / "gate.md",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

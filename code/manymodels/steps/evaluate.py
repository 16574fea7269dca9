"""Step ``evaluate``: the gate (see :mod:`manymodels.gate`) for every trained partition.

Each partition's current champion is loaded from the registry and scored on the SAME held-out
weeks as the candidate. Writes ``<workdir>/reports/gate.json`` and ``gate.md`` (a table that
also suits a GitHub job summary) and logs both to the pipeline's MLflow run.
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

__all__ = ["champion_metrics", "main", "render_gate"]

log = logging.getLogger(__name__)
MARK = {True: "✅", False: "❌", None: "–"}


def champion_metrics(
    packed: PackedModel, frame: pd.DataFrame, test_weeks: list[str]
) -> dict[str, float]:
    """Metrics of a registered model on the given weeks of ``frame``, built its own way."""
    features = build_features(frame, **packed.features)
    test = features[features["week"].isin(pd.to_datetime(test_weeks)) & features["units"].notna()]
    return evaluate(test["units"], packed.predict(test))


def render_gate(verdicts: list[Verdict], gate: GateSettings, header: dict) -> str:
    """The gate report in Markdown: thresholds, counts per decision, and one row per partition."""
    counts = pd.Series([v.decision for v in verdicts]).value_counts().to_dict() if verdicts else {}
    special = ""
    for o in gate.overrides:
        max_mape, improvement = gate.bars({o.key: o.value})
        special += f"; for {o.key} = {o.value}: MAPE <= {max_mape}, reduction >= {improvement:.0%}"
    lines = [
        "## Model gate",
        "",
        f"run mode **{gate.run_mode}**; bars: MAPE <= {gate.max_mape}, MAPE reduction vs "
        f"baseline >= {gate.min_improvement_vs_baseline:.0%}{special}; never worse than the "
        f"champion by more than {gate.champion_tolerance:.0%}",
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
        "mape",
        "baseline_mape",
        "improvement",
        "champion_mape",
        "mape_target",
        "beats_baseline",
        "not_worse_than_champion",
        "decision",
        "reason",
    ]
    heads = [
        "partition",
        "MAPE",
        "baseline MAPE",
        "vs baseline",
        "champion MAPE",
        "MAPE target",
        "beats baseline",
        "vs champion",
        "decision",
        "why",
    ]
    return "\n".join(lines) + markdown_table(rows, cols, heads)


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
    for pid, part in training["partitions"].items():
        name = registry.model_name(settings, pid)
        champion = registry.get_alias(store, name, registry.CHAMPION)
        if part["status"] != "trained":
            records[pid] = {
                "decision": "training_failed",
                "reason": part.get("error", ""),
                "champion_version": champion.version if champion else None,
            }
            continue
        champion_mape = None
        if champion is not None:
            try:
                packed = registry.load(store, name, version=champion.version)
                frame = pd.read_parquet(settings.path("partitions", f"{pid}.parquet"))
                champion_mape = champion_metrics(packed, frame, part["test_weeks"])["mape"]
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
            champion_mape=champion_mape,
            champion_version=champion.version if champion else None,
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

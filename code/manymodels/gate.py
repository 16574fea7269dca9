"""The evaluation gate: per partition, may the candidate ensemble replace what serves today?

Every figure comes from the rolling-origin backtest (:mod:`manymodels.training`): metrics pooled
over ``training.backtest.origins`` windows of 4-week-ahead forecasts. Each partition is judged
by one error metric, ``training.gate.metric`` (``mape`` by default; ``gate.overrides`` may set
another metric and other bars for the partitions with a given key value). A candidate passes
only if ALL hold (thresholds in ``training.gate``):

1. ``error_target``: its error is at most ``max_mape`` (or ``max_wape`` when the metric is WAPE);
2. ``beats_baseline``: its relative error reduction over the historical-average baseline, on the
   same backtest weeks, is at least ``min_improvement_vs_baseline``;
3. ``zero_weeks`` (when ``max_rmse_zero_vs_baseline`` is set and the partition has weeks that
   sold nothing): its RMSE on those weeks (RMSE0) is at most the baseline's times that factor;
4. ``not_worse_than_champion``: if the partition has a ``champion``, the candidate's error is
   at most the champion's on the SAME weeks times ``1 + champion_tolerance``. Those are the
   backtest weeks the champion never trained on, compared with the candidate's backtest
   forecasts; when the champion has seen them all (same data), both deployed models are scored
   on all backtest weeks, so an unchanged retrain scores the same and passes.

**Slow movers are judged by WAPE and RMSE0, not MAPE** (``pipelines/training.yaml``): MAPE
only counts the weeks that sold something, so it rewards forecasting about 1 unit every week,
including the many weeks that sell nothing. WAPE charges every unit of error, and RMSE0 says how
much a model forecasts for weeks with no sales.

What then happens (``decision``): ``promote`` the candidate; else ``keep_champion`` (the
partition keeps serving its champion); else, with no champion, ``fallback_baseline`` (the
baseline model is registered and served). A partition whose training failed is
``training_failed``: it keeps its champion, if any. ``run_mode`` ``dry_run`` decides the same
way but only reports it (``register`` and ``promote`` then register and move nothing);
``disabled`` skips the checks and promotes them all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from manymodels.config import GateSettings

__all__ = ["RUN_MODES", "Verdict", "judge"]

RUN_MODES = ("enabled", "dry_run", "disabled")


@dataclass(frozen=True)
class Verdict:
    partition: str
    mape: float
    baseline_mape: float
    improvement: float  # relative reduction of ``metric`` vs the baseline
    champion_mape: float | None
    champion_version: str | None
    max_mape: float  # the bars this partition was held to (for ``metric``)
    min_improvement: float
    checks: dict[str, bool | None]  # None: not applicable
    passed: bool
    decision: str
    reason: str
    metric: str = "mape"  # the error metric of the checks below
    error: float = float("nan")  # the candidate's, pooled over the backtest origins
    baseline_error: float = float("nan")
    max_error: float = float("nan")
    champion_error: float | None = None  # on the weeks both were compared on
    candidate_error_vs_champion: float | None = None
    rmse_zero: float = float("nan")
    baseline_rmse_zero: float = float("nan")

    def as_dict(self) -> dict:
        return asdict(self)


def judge(
    partition: str,
    metrics: dict[str, float],
    gate: GateSettings,
    *,
    keys: dict[str, str] | None = None,
    champion_mape: float | None = None,
    champion_version: str | None = None,
    champion_metrics: dict[str, float] | None = None,
    candidate_metrics: dict[str, float] | None = None,
) -> Verdict:
    """The verdict for one trained partition (see the module docstring for the rules).

    ``keys`` (the partition's key values) select the bars: ``gate.overrides`` may set other
    ones for, say, slow movers. ``champion_metrics`` are the champion's metrics (``mape``,
    ``wape``...) on the weeks it is compared on, ``candidate_metrics`` the candidate's on the
    same weeks (default: its pooled backtest metrics); ``champion_mape`` alone is the older
    form of the same for MAPE.
    """
    if gate.run_mode not in RUN_MODES:
        raise ValueError(
            f"training.gate.run_mode must be one of {RUN_MODES}, got {gate.run_mode!r}"
        )
    rules = gate.rules(keys or {})
    m = rules.metric
    # training.json holds an undefined metric (no zero weeks...) as null: NaN here
    metrics = {k: float("nan") if v is None else v for k, v in metrics.items()}
    max_mape, min_improvement = rules.max_error, rules.min_improvement  # the Verdict's names
    mape, base = metrics["ensemble_mape"], metrics["baseline_mape"]
    error = metrics[f"ensemble_{m}"]
    base_error = metrics[f"baseline_{m}"]
    improvement = (
        (base_error - error) / base_error
        if base_error and not math.isnan(base_error)
        else float("nan")
    )
    if champion_metrics is None and champion_mape is not None and m == "mape":
        champion_metrics = {"mape": champion_mape}
    champion_error = None if champion_metrics is None else champion_metrics.get(m)
    versus = (candidate_metrics or {}).get(m, error) if champion_error is not None else None
    rmse0 = metrics.get("ensemble_rmse_zero", float("nan"))
    base_rmse0 = metrics.get("baseline_rmse_zero", float("nan"))
    zero_bar = rules.max_rmse_zero_vs_baseline
    checks: dict[str, bool | None] = {
        "error_target": bool(error <= rules.max_error),  # NaN compares False: fails
        "beats_baseline": bool(improvement >= min_improvement),
        "zero_weeks": None
        if zero_bar is None or math.isnan(base_rmse0)
        else bool(rmse0 <= base_rmse0 * zero_bar),
        "not_worse_than_champion": None
        if champion_error is None or math.isnan(champion_error)
        else bool(versus <= champion_error * (1 + gate.champion_tolerance)),
    }
    passed = all(v is not False for v in checks.values())
    failed = [k for k, v in checks.items() if v is False]
    if gate.run_mode == "disabled":
        decision, reason = "promote", "gate disabled"
    elif passed:
        decision, reason = "promote", "all checks passed"
    elif champion_version is not None:
        decision, reason = (
            "keep_champion",
            f"failed {', '.join(failed)}; champion v{champion_version} keeps serving",
        )
    else:
        decision, reason = (
            "fallback_baseline",
            f"failed {', '.join(failed)}; no champion: the baseline serves",
        )
    if gate.run_mode == "dry_run":
        reason = f"dry run, nothing registered: {reason}"
    return Verdict(
        partition,
        mape,
        base,
        improvement,
        champion_metrics.get("mape") if champion_metrics else champion_mape,
        champion_version,
        max_mape,
        min_improvement,
        checks,
        passed,
        decision,
        reason,
        metric=m,
        error=error,
        baseline_error=base_error,
        max_error=rules.max_error,
        champion_error=champion_error,
        candidate_error_vs_champion=versus,
        rmse_zero=rmse0,
        baseline_rmse_zero=base_rmse0,
    )

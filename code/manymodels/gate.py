"""The evaluation gate: per partition, may the candidate ensemble replace what serves today?

A candidate passes only if ALL hold (thresholds in ``training.gate``):

1. ``mape <= max_mape`` (the absolute target; ``gate.overrides`` may set other bars for the
   partitions with a given key value, e.g. slow movers);
2. its relative MAPE reduction over the historical-average baseline, on the same held-out window,
   is at least ``min_improvement_vs_baseline``;
3. if the partition has a ``champion``, the candidate's MAPE is at most the champion's MAPE on the
   SAME held-out data times ``1 + champion_tolerance`` (an unchanged retrain scores the same, so
   it passes instead of failing against itself).

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
    improvement: float  # relative MAPE reduction vs the baseline
    champion_mape: float | None
    champion_version: str | None
    max_mape: float  # the bars this partition was held to
    min_improvement: float
    checks: dict[str, bool | None]  # None: not applicable
    passed: bool
    decision: str
    reason: str

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
) -> Verdict:
    """The verdict for one trained partition (see the module docstring for the rules).

    ``keys`` (the partition's key values) select the bars: ``gate.overrides`` may set other
    ones for, say, slow movers.
    """
    if gate.run_mode not in RUN_MODES:
        raise ValueError(
            f"training.gate.run_mode must be one of {RUN_MODES}, got {gate.run_mode!r}"
        )
    max_mape, min_improvement = gate.bars(keys or {})
    mape, base = metrics["ensemble_mape"], metrics["baseline_mape"]
    improvement = (base - mape) / base if base and not math.isnan(base) else float("nan")
    checks: dict[str, bool | None] = {
        "mape_target": bool(mape <= max_mape),  # NaN compares False: fails
        "beats_baseline": bool(improvement >= min_improvement),
        "not_worse_than_champion": None
        if champion_mape is None or math.isnan(champion_mape)
        else bool(mape <= champion_mape * (1 + gate.champion_tolerance)),
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
        champion_mape,
        champion_version,
        max_mape,
        min_improvement,
        checks,
        passed,
        decision,
        reason,
    )

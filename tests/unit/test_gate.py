"""The gate's rules, one behaviour per test."""

from __future__ import annotations

import math

import pytest

from manymodels.config import GateSettings
from manymodels.gate import judge

GATE = GateSettings(
    run_mode="enabled", max_mape=0.45, min_improvement_vs_baseline=0.10, champion_tolerance=0.02
)


def metrics(mape: float, baseline: float) -> dict[str, float]:
    return {"ensemble_mape": mape, "baseline_mape": baseline}


def test_a_good_candidate_without_champion_is_promoted():
    verdict = judge("p", metrics(0.20, 0.30), GATE)
    assert verdict.passed and verdict.decision == "promote"
    assert verdict.improvement == pytest.approx(1 / 3)
    assert verdict.checks["not_worse_than_champion"] is None


def test_mape_above_target_fails_and_falls_back_to_baseline_without_champion():
    verdict = judge("p", metrics(0.50, 0.90), GATE)
    assert not verdict.passed
    assert verdict.checks == {
        "mape_target": False,
        "beats_baseline": True,
        "not_worse_than_champion": None,
    }
    assert verdict.decision == "fallback_baseline"
    assert "mape_target" in verdict.reason


def test_too_small_an_improvement_over_the_baseline_fails():
    verdict = judge("p", metrics(0.28, 0.30), GATE)  # 6.7% < 10%
    assert verdict.checks["beats_baseline"] is False


def test_unchanged_retrain_passes_against_its_own_champion():
    verdict = judge("p", metrics(0.20, 0.30), GATE, champion_mape=0.20, champion_version="3")
    assert verdict.checks["not_worse_than_champion"] is True
    assert verdict.decision == "promote"


def test_within_tolerance_passes_and_beyond_it_keeps_the_champion():
    assert judge("p", metrics(0.204, 0.30), GATE, champion_mape=0.20, champion_version="3").passed
    verdict = judge("p", metrics(0.21, 0.30), GATE, champion_mape=0.20, champion_version="3")
    assert verdict.checks["not_worse_than_champion"] is False
    assert verdict.decision == "keep_champion"
    assert "v3" in verdict.reason


def test_nan_mape_fails_instead_of_passing_silently():
    verdict = judge("p", metrics(math.nan, 0.30), GATE)
    assert verdict.checks["mape_target"] is False and not verdict.passed


def test_dry_run_reports_what_the_gate_would_decide():
    verdict = judge("p", metrics(0.60, 0.50), GateSettings(run_mode="dry_run"))
    assert not verdict.passed
    assert verdict.decision == "fallback_baseline" and verdict.reason.startswith("dry run")
    kept = judge("p", metrics(0.60, 0.50), GateSettings(run_mode="dry_run"), champion_version="3")
    assert kept.decision == "keep_champion" and "v3 keeps serving" in kept.reason


def test_disabled_gate_promotes_everything():
    verdict = judge(
        "p",
        metrics(0.90, 0.10),
        GateSettings(run_mode="disabled"),
        champion_mape=0.1,
        champion_version="1",
    )
    assert verdict.decision == "promote" and verdict.reason == "gate disabled"


def test_unknown_run_mode_is_an_error():
    with pytest.raises(ValueError, match="run_mode"):
        judge("p", metrics(0.2, 0.3), GateSettings(run_mode="sometimes"))


def test_as_dict_is_json_ready():
    record = judge("p", metrics(0.2, 0.3), GATE).as_dict()
    assert record["partition"] == "p" and record["decision"] == "promote"


def test_overrides_set_other_bars_for_matching_partitions():
    from manymodels.config import GateOverride

    gate = GateSettings(
        overrides=(
            GateOverride(
                key="speed", value="slow", max_mape=0.65, min_improvement_vs_baseline=0.02
            ),
        )
    )
    slow = judge("p", metrics(0.60, 0.63), gate, keys={"speed": "slow"})
    assert slow.passed and (slow.max_mape, slow.min_improvement) == (0.65, 0.02)
    fast = judge("p", metrics(0.60, 0.63), gate, keys={"speed": "fast"})
    assert not fast.passed and fast.max_mape == 0.45


def test_overrides_parse_from_settings():
    from manymodels.config import load_settings

    settings = load_settings(
        "pipelines", "dev", ["training.gate.overrides=[{key: speed, value: slow, max_mape: 0.7}]"]
    )
    (override,) = settings.training.gate.overrides
    assert override.max_mape == 0.7 and override.min_improvement_vs_baseline is None
    assert settings.training.gate.bars({"speed": "slow"}) == (
        0.7,
        settings.training.gate.min_improvement_vs_baseline,
    )

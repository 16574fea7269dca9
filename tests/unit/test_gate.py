"""The gate's rules, one behaviour per test."""

from __future__ import annotations

import math

import pytest

from manymodels.config import GateOverride, GateSettings
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
        "error_target": False,
        "beats_baseline": True,
        "zero_weeks": None,
        "not_worse_than_champion": None,
    }
    assert verdict.decision == "fallback_baseline"
    assert "error_target" in verdict.reason


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
    assert verdict.checks["error_target"] is False and not verdict.passed


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


SLOW = GateSettings(
    overrides=(
        GateOverride(
            key="speed",
            value="slow",
            metric="wape",
            max_wape=1.5,
            min_improvement_vs_baseline=0.0,
            max_rmse_zero_vs_baseline=1.0,
        ),
    )
)


def slow_metrics(**given: float) -> dict[str, float]:
    base = {
        "ensemble_mape": 0.60,
        "baseline_mape": 0.62,
        "ensemble_wape": 1.20,
        "baseline_wape": 1.30,
        "ensemble_rmse_zero": 0.40,
        "baseline_rmse_zero": 0.45,
    }
    return base | given


def test_slow_movers_are_judged_by_wape_not_mape():
    # MAPE far above the 0.45 bar and worse than the baseline's: WAPE decides
    verdict = judge("p", slow_metrics(ensemble_mape=0.9), SLOW, keys={"speed": "slow"})
    assert verdict.metric == "wape" and verdict.passed
    assert verdict.error == 1.20 and verdict.max_error == 1.5
    assert verdict.improvement == pytest.approx(0.1 / 1.3)


def test_over_forecasting_zero_weeks_fails_slow_movers_even_with_a_better_mape():
    # the trap: forecasting ~1 unit every week wins MAPE but sells phantom demand
    verdict = judge(
        "p",
        slow_metrics(ensemble_mape=0.40, ensemble_wape=1.29, ensemble_rmse_zero=0.70),
        SLOW,
        keys={"speed": "slow"},
    )
    assert verdict.checks["zero_weeks"] is False and not verdict.passed
    assert "zero_weeks" in verdict.reason


def test_a_worse_wape_than_the_baseline_fails_slow_movers():
    verdict = judge("p", slow_metrics(ensemble_wape=1.35), SLOW, keys={"speed": "slow"})
    assert verdict.checks["beats_baseline"] is False


def test_zero_week_check_is_not_applicable_without_zero_weeks():
    metrics_ = slow_metrics(ensemble_rmse_zero=math.nan, baseline_rmse_zero=math.nan)
    assert judge("p", metrics_, SLOW, keys={"speed": "slow"}).checks["zero_weeks"] is None


def test_fast_movers_keep_the_mape_rules():
    verdict = judge("p", slow_metrics(ensemble_mape=0.9), SLOW, keys={"speed": "fast"})
    assert verdict.metric == "mape" and verdict.checks["error_target"] is False
    assert verdict.checks["zero_weeks"] is None


def test_champion_is_compared_on_the_given_weeks_by_the_partitions_metric():
    champion = {"mape": 0.1, "wape": 1.0}
    kw = {"keys": {"speed": "slow"}, "champion_version": "4", "champion_metrics": champion}
    # pooled backtest WAPE 1.20 is worse than the champion's 1.0, but on the compared weeks
    # the candidate scored 1.01: within the 2% tolerance
    verdict = judge("p", slow_metrics(), SLOW, candidate_metrics={"wape": 1.01}, **kw)
    assert verdict.checks["not_worse_than_champion"] is True
    assert (verdict.champion_error, verdict.candidate_error_vs_champion) == (1.0, 1.01)
    verdict = judge("p", slow_metrics(), SLOW, candidate_metrics={"wape": 1.1}, **kw)
    assert verdict.decision == "keep_champion"


def test_unknown_gate_metric_is_an_error():
    with pytest.raises(ValueError, match="metric"):
        judge("p", metrics(0.2, 0.3), GateSettings(metric="smape"))


def test_shipped_settings_judge_slow_movers_by_wape_and_zero_weeks():
    from manymodels.config import load_settings

    rules = load_settings("pipelines", "dev").training.gate.rules({"speed": "slow"})
    assert rules.metric == "wape" and rules.max_rmse_zero_vs_baseline is not None


def test_undefined_metrics_read_back_from_json_as_null_are_judged_as_nan():
    """training.json writes an undefined metric (no zero weeks) as null: the gate reads it as
    NaN, not as a TypeError, and decides as it does for NaN."""
    from_json = slow_metrics(ensemble_rmse_zero=None, baseline_rmse_zero=None)
    as_nan = slow_metrics(ensemble_rmse_zero=math.nan, baseline_rmse_zero=math.nan)
    got = judge("p", from_json, SLOW, keys={"speed": "slow"})
    want = judge("p", as_nan, SLOW, keys={"speed": "slow"})
    assert got.checks == want.checks and got.decision == want.decision
    assert got.checks["zero_weeks"] is None


def test_a_null_error_metric_fails_like_nan():
    verdict = judge("p", {"ensemble_mape": None, "baseline_mape": 0.3}, GATE)
    assert verdict.checks["error_target"] is False and verdict.decision != "promote"

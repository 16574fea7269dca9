"""``manymodels e2e``: the stages of ``make e2e`` in one process, in order, stopping at the first
that fails. The stages themselves run for real in the executed PR and CI workflow tests
(``make e2e`` in act); here the wiring: which stage gets which environment and options."""

from __future__ import annotations

import pytest

from manymodels import cli
from manymodels.steps import e2e


class Stages(list):
    """The stages called, in order; each returns the next code in ``codes`` (0 when empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[int] = []

    def done(self, call: tuple) -> int:
        self.append(call)
        return self.codes.pop(0) if self.codes else 0


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Stages:
    """Records the stages instead of running them."""
    stages = Stages()
    monkeypatch.setattr(
        e2e, "run_pipeline",
        lambda name, common, config_dir, env, overrides: stages.done(
            ("run", name, env, common, config_dir, overrides)
        ),
    )  # fmt: skip
    monkeypatch.setattr(e2e, "run_step", lambda name, argv: stages.done(("step", name, argv)))
    monkeypatch.setattr(e2e, "setup_logging", lambda: None)
    return stages


def test_e2e_trains_in_dev_promotes_to_prod_and_scores_in_prod_with_the_same_options(calls):
    sets = ["--set", "project.workdir=w", "--set", "mock.regions=2"]
    assert cli.main(["e2e", "--local", "--config-dir", "cfg", *sets]) == 0
    common = ["--config-dir", "cfg", "--local", *sets]
    overrides = ("project.workdir=w", "mock.regions=2")
    assert calls == [
        ("run", "training", "dev", [*common, "--env", "dev"], "cfg", overrides),
        ("step", "promote", ["--to", "prod", *common, "--env", "prod"]),
        ("run", "scoring", "prod", [*common, "--env", "prod"], "cfg", overrides),
    ]


def test_e2e_stops_at_the_first_stage_that_fails_and_returns_its_code(calls, caplog):
    calls.codes.extend([0, 3])  # training passes, the promotion fails
    with caplog.at_level("ERROR"):
        assert e2e.main(["--set", "project.workdir=w"]) == 3
    assert [c[1] for c in calls] == ["training", "promote"]  # no scoring after a failure
    assert "promote to prod exited with 3" in caplog.text
    assert all("--local" not in c[-1] for c in calls if c[0] == "step")


def test_e2e_puts_a_profiles_keys_before_the_command_lines_own(calls, tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("training:\n  workers: 1\n")
    assert e2e.main(["--profile", str(profile), "--set", "training.workers=2"]) == 0
    overrides = calls[0][-1]
    assert overrides.index("training.workers=1") < overrides.index("training.workers=2")

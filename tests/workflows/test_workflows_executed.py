"""The real workflow files, run offline with act in host mode (see workflow_harness.py).

Each job gets a fresh clone of the snapshot and installs the project with `make setup` (or
`make setup-runtime`), as on a GitHub runner, but offline from one wheelhouse with uv, so a job's
install takes seconds. The runs still take minutes; `make test-cov` leaves them out (marker
``workflows``), `make test` and `make test-workflows` run them. Outcomes are asserted, not just
exit codes: job results, step summaries, uploaded artifacts, and registered model versions,
aliases and lineage tags read back with the MLflow client (prod serves dev's exact versions).

The runs are spread over three modules (this one, ``_ci`` and ``_cd``), which pytest-xdist runs
side by side (``--dist loadfile``); the shared settings and checks are in executed_checks.py.
"""

from __future__ import annotations

import os

import pytest
from executed_checks import (
    E2E_IN_PROCESS,
    EMBEDDED_STEP,
    FEW_EPOCHS,
    FEW_EPOCHS_IN_PROCESS,
    QUICK_TEST_COV,
    _assert_coverage,
    _assert_e2e_reports,
    _champions,
    _expected_champions,
    _files,
    _first_line,
    _gate,
)
from workflow_harness import Act, require_targets

pytestmark = [pytest.mark.workflows, pytest.mark.slow]

# ---------------------------------------------------------------- code: pull request and main


def test_pull_request_runs_lint_tests_and_mock_end_to_end(act: Act):
    require_targets("pr-validation")
    result = act.run("pull_request", "pr-validation", "pull_request.json",
                     env=QUICK_TEST_COV | E2E_IN_PROCESS, label="PR validation")  # fmt: skip
    result.assert_job("test-cov")
    _assert_coverage(result)
    result.assert_job("e2e")
    _assert_e2e_reports(result)
    result.assert_job("lint")
    result.assert_jobs({"lint": "success", "test-cov": "success", "e2e": "success"})


def test_failed_ci_does_not_start_model_validation(act: Act):
    result = act.run("workflow_run", "cd-model-validation", "workflow_run_ci_failure.json",
                     label="CD model validation after a failed CI (skipped)")  # fmt: skip
    assert result.returncode == 0 and result.jobs == {}


# ---------------------------------------------------------------- a fresh fork: embedded mode


def test_fresh_fork_model_validation_builds_an_embedded_dev_registry(act: Act):
    """No variables: the job trains into a local MLflow store and uploads it as an artifact."""
    require_targets("cd-model-validation")
    result = act.run(
        "workflow_dispatch", "cd-model-validation", "workflow_dispatch.json",
        env=FEW_EPOCHS_IN_PROCESS, label="CD model validation (dispatch, embedded store)",
    )  # fmt: skip
    result.assert_jobs({"model-validation": "success"})
    assert "Azure login (OIDC)" not in result.steps("model-validation")
    registry = result.artifacts / "dev-registry"
    assert (registry / "mlflow.db").is_file()
    champions = _champions(f"sqlite:///{registry / 'mlflow.db'}")
    gate = _gate(result.artifacts / "gate-report")
    assert champions and _expected_champions(gate) <= set(champions), (gate, champions)
    assert all(name.startswith("demand.") and name.count(".") == 3 for name in champions)
    assert (
        _first_line(result.artifacts / "gate-report" / "gate.md")
        in result.summaries["model-validation"]
    )


@pytest.mark.skipif(
    os.environ.get("MANYMODELS_ALL_WORKFLOW_RUNS") != "1",
    reason="~8 min and its jobs repeat the two CD runs above; set MANYMODELS_ALL_WORKFLOW_RUNS=1",
)
def test_new_data_reruns_model_validation_then_scoring_in_embedded_mode(act: Act):
    """repository_dispatch new-data on a fresh fork: model validation in dev, then release
    scoring in prod, which first runs model validation on its own runner (embedded mode).

    act gives every job the same variables, while GitHub scopes them per environment; so the
    shared-registry hand-over is tested with two runs in the test above, and this one runs
    embedded, the path a fork without any variables takes.
    """
    require_targets("cd-data-change")
    result = act.run(
        "repository_dispatch", "cd-data-change", "repository_dispatch_new_data.json",
        env=FEW_EPOCHS, label="CD data change (repository_dispatch new-data, embedded)",
    )  # fmt: skip
    result.assert_jobs(
        {"model-validation": "success", "release-branch": "success", "release-scoring": "success"}
    )
    _gate(result.artifacts / "gate-report")
    steps = result.steps("release-scoring")
    assert steps[EMBEDDED_STEP] == "success" and steps["make release-scoring"] == "success"
    assert _files(result.artifacts / "predictions" / "predictions")
    scoring = result.artifacts / "predictions" / "reports" / "scoring.md"
    assert _first_line(scoring) in result.summaries["release-scoring"]

"""The real workflow files, run offline with act in host mode (see workflow_harness.py).

Each job gets a fresh copy of the working tree and installs the project with `make setup`, as on
a GitHub runner, so these tests are slow (minutes each); `make test-cov` leaves them out (marker
``workflows``), `make test` and `make test-workflows` run them. Outcomes are asserted, not just
exit codes: job results, step summaries, uploaded artifacts, and registered model versions and
aliases read back with the MLflow client.
"""

from __future__ import annotations

import json
import os
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from workflow_harness import Act, ActResult, mlflow_server, require_targets

pytestmark = [pytest.mark.workflows, pytest.mark.slow]

# Fixed Azure ids in the OIDC test: the azure/login stand-in checks it is called, never logs in.
AZURE = {
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000002",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000003",
}
# Gate decisions after which a partition has a champion in a registry that started empty.
SERVING = {"promote", "fallback_baseline"}
EMBEDDED_STEP = "Model validation (embedded mode, no remote registry)"


def _client(uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _champions(uri: str) -> dict[str, str]:
    """Registered model name -> version that carries the ``champion`` alias."""
    client = _client(uri)
    found = {}
    for model in client.search_registered_models(max_results=1000):
        if "champion" in model.aliases:
            found[model.name] = model.aliases["champion"]
    return found


def _gate(report_dir: Path) -> dict:
    gate = json.loads((report_dir / "gate.json").read_text())
    assert gate["partitions"], "the gate judged no partition"
    return gate


def _verdicts(gate: dict) -> dict[str, dict]:
    """Partition id -> verdict (gate.json keys them by partition; a list is accepted too)."""
    partitions = gate["partitions"]
    if isinstance(partitions, dict):
        return partitions
    return {verdict["partition"]: verdict for verdict in partitions}


def _expected_champions(gate: dict) -> set[str]:
    return {f"demand.{pid}" for pid, v in _verdicts(gate).items() if v["decision"] in SERVING}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _first_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.strip())


def _assert_e2e_reports(result: ActResult) -> None:
    reports = result.artifacts / "e2e-reports" / "reports"
    gate = _gate(reports)
    assert _expected_champions(gate), f"no partition passed the gate: {gate['partitions']}"
    assert _files(result.artifacts / "e2e-reports" / "predictions"), "e2e wrote no predictions"
    summary = result.summaries.get("e2e", "")
    assert _first_line(reports / "gate.md") in summary
    assert _first_line(reports / "scoring.md") in summary


def _assert_coverage(result: ActResult) -> None:
    coverage = result.artifacts / "coverage"
    root = ET.parse(coverage / "coverage.xml").getroot()
    assert root.tag == "coverage" and float(root.get("line-rate")) > 0
    summary = (coverage / "work" / "reports" / "coverage.md").read_text()
    assert summary.strip() and summary.strip().splitlines()[0] in result.summaries["test-cov"]


# ---------------------------------------------------------------- code: pull request and main


def test_pull_request_runs_lint_tests_and_mock_end_to_end(act: Act):
    require_targets("pr-validation")
    result = act.run("pull_request", "pr-validation", "pull_request.json", label="PR validation")
    result.assert_job("test-cov")
    _assert_coverage(result)
    result.assert_job("e2e")
    _assert_e2e_reports(result)
    result.assert_job("lint")
    result.assert_jobs({"lint": "success", "test-cov": "success", "e2e": "success"})


def test_push_to_main_runs_ci_and_packages(act: Act):
    require_targets("ci")
    result = act.run("push", "ci", "push_main.json", label="CI (push to main)")
    result.assert_job("test-cov")
    _assert_coverage(result)
    result.assert_job("e2e")
    _assert_e2e_reports(result)
    result.assert_job("lint")
    result.assert_jobs(dict.fromkeys(["lint", "test-cov", "e2e", "package"], "success"))
    dist = _files(result.artifacts / "dist")
    wheels = [p for p in dist if p.suffix == ".whl"]
    assert len(wheels) == 1 and wheels[0].name.startswith("manymodels-")
    assert "manymodels/__init__.py" in zipfile.ZipFile(wheels[0]).namelist()
    bundled = []
    for path in dist:
        if path not in wheels and tarfile.is_tarfile(path):
            bundled += tarfile.open(path).getnames()
        elif path not in wheels and zipfile.is_zipfile(path):
            bundled += zipfile.ZipFile(path).namelist()
    assert any(name.endswith("training.yaml") for name in bundled), f"no pipeline bundle in {dist}"


# ---------------------------------------------------------------- CD against shared registries


def test_main_to_release_through_shared_dev_and_prod_registries(act: Act, act_tmp: Path):
    """CI success -> model validation in dev (with OIDC login) -> release branch -> prod scoring,
    against two local MLflow servers standing in for a team's shared dev and prod registries."""
    require_targets("cd-model-validation", "cd-scoring")
    with (
        mlflow_server(act_tmp / "dev-server") as dev,
        mlflow_server(act_tmp / "prod-server") as prod,
    ):
        validated = act.run(
            "workflow_run", "cd-model-validation", "workflow_run_ci_success.json",
            variables={"MLFLOW_TRACKING_URI": dev, **AZURE}, env={"STANDIN_AZURE_LOGIN": "allow"},
            label="CD model validation (workflow_run after CI, shared dev registry)",
        )  # fmt: skip
        validated.assert_jobs({"model-validation": "success"})
        steps = validated.steps("model-validation")
        assert steps["Azure login (OIDC)"] == "success"
        assert "Upload the embedded dev registry" not in steps  # a remote registry is configured
        gate = _gate(validated.artifacts / "gate-report")
        dev_champions = _champions(dev)
        assert _expected_champions(gate) <= set(dev_champions), (gate, dev_champions)
        assert dev_champions, "model validation registered no champion in the dev registry"
        assert (
            _first_line(validated.artifacts / "gate-report" / "gate.md")
            in validated.summaries["model-validation"]
        )

        scored = act.run(
            "push", "cd-scoring", "push_release.json",
            variables={"MLFLOW_TRACKING_URI": prod, "MANYMODELS_DEV_TRACKING_URI": dev},
            label="CD scoring (push to release/*, shared prod registry)",
        )  # fmt: skip
        scored.assert_jobs({"release-scoring": "success"})
        steps = scored.steps("release-scoring")
        assert EMBEDDED_STEP not in steps and "Azure login (OIDC)" not in steps
        assert steps["make release-scoring"] == "success"
        prod_champions = _champions(prod)
        assert set(prod_champions) == set(dev_champions), "prod must serve exactly dev's champions"
        assert _files(scored.artifacts / "predictions" / "predictions")
        assert (
            _first_line(scored.artifacts / "predictions" / "reports" / "scoring.md")
            in scored.summaries["release-scoring"]
        )
        assert _champions(dev) == dev_champions, "scoring must not change the dev registry"


def test_failed_ci_does_not_start_model_validation(act: Act):
    result = act.run("workflow_run", "cd-model-validation", "workflow_run_ci_failure.json",
                     label="CD model validation after a failed CI (skipped)")  # fmt: skip
    assert result.returncode == 0 and result.jobs == {}


# ---------------------------------------------------------------- a fresh fork: embedded mode


def test_fresh_fork_model_validation_builds_an_embedded_dev_registry(act: Act):
    """No variables: the job trains into a local MLflow store and uploads it as an artifact."""
    require_targets("cd-model-validation")
    result = act.run("workflow_dispatch", "cd-model-validation", "workflow_dispatch.json",
                     label="CD model validation (dispatch, embedded store)")  # fmt: skip
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
    result = act.run("repository_dispatch", "cd-data-change", "repository_dispatch_new_data.json",
                     label="CD data change (repository_dispatch new-data, embedded)")  # fmt: skip
    result.assert_jobs({"model-validation": "success", "release-scoring": "success"})
    _gate(result.artifacts / "gate-report")
    steps = result.steps("release-scoring")
    assert steps[EMBEDDED_STEP] == "success" and steps["make release-scoring"] == "success"
    assert _files(result.artifacts / "predictions" / "predictions")
    scoring = result.artifacts / "predictions" / "reports" / "scoring.md"
    assert _first_line(scoring) in result.summaries["release-scoring"]

"""The real workflow files, run offline with act in host mode (see workflow_harness.py).

Each job gets a fresh clone of the snapshot and installs the project with `make setup` (or
`make setup-runtime`), as on a GitHub runner, but offline from one wheelhouse with uv, so a job's
install takes seconds. The runs still take minutes; `make test-cov` leaves them out (marker
``workflows``), `make test` and `make test-workflows` run them. Outcomes are asserted, not just
exit codes: job results, step summaries, uploaded artifacts, and registered model versions,
aliases and lineage tags read back with the MLflow client (prod serves dev's exact versions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from workflow_harness import (
    RELEASES,
    UNDER_TEST,
    Act,
    ActResult,
    clean_env,
    mlflow_server,
    require_targets,
    rev,
)

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
# Inside act, the test-cov job runs one small test module, without the coverage gate: this pytest
# session runs every test once already; what the act run shows is the job's wiring (make
# test-cov, coverage.xml, the summary, the upload), which any module shows as well.
QUICK_TEST_COV = {"PYTEST_ADDOPTS": "tests/unit/test_io.py --cov-fail-under=0"}
# The CD runs train the full mock set with 3 NN epochs instead of 30 (ARGS reaches `manymodels run`
# through the make targets): they test the hand-over between workflows, registries and
# environments; what training produces is tested in tests/integration.
FEW_EPOCHS = {"ARGS": "--set training.nn.epochs=3"}
CI_RUN_ID = "4242"  # the CI run whose `dist` artifact cd-model-validation downloads


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


def _champion_versions(uri: str) -> dict:
    """Registered model name -> the champion's ModelVersion (tags, run id)."""
    client = _client(uri)
    return {
        name: client.get_model_version(name, version) for name, version in _champions(uri).items()
    }


def _ci_dist(snapshot: Path, downloads: Path) -> Path:
    """What CI's package job uploads as `dist`: the wheel of the commit under test, stored where
    the download-artifact stand-in looks for run CI_RUN_ID's artifacts."""
    dist = downloads / CI_RUN_ID / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(snapshot)],
        capture_output=True, text=True, env=clean_env(), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = dist.glob("manymodels-*.whl")
    return wheel


def _event(folder: Path, name: str, **changes) -> str:
    """A copy of events/<name> with workflow_run fields changed; returns its path."""
    from workflow_harness import EVENTS

    event = json.loads((EVENTS / name).read_text())
    event["workflow_run"].update(changes)
    path = folder / name
    path.write_text(json.dumps(event))
    return str(path)


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
    result = act.run("pull_request", "pr-validation", "pull_request.json", env=QUICK_TEST_COV,
                     label="PR validation")  # fmt: skip
    result.assert_job("test-cov")
    _assert_coverage(result)
    result.assert_job("e2e")
    _assert_e2e_reports(result)
    result.assert_job("lint")
    result.assert_jobs({"lint": "success", "test-cov": "success", "e2e": "success"})


def test_push_to_main_runs_ci_and_packages(act: Act):
    require_targets("ci")
    result = act.run("push", "ci", "push_main.json", env=QUICK_TEST_COV, label="CI (push to main)")
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


def test_main_to_release_through_shared_dev_and_prod_registries(
    act: Act, act_tmp: Path, snapshot: Path
):
    """CI success -> model validation in dev (with OIDC login) -> release branch -> prod scoring,
    against two local MLflow servers standing in for a team's shared dev and prod registries.

    Identity, not names: dev trains the commit CI tested (not main's newer head) from CI's wheel,
    its versions carry that commit, and prod's champion for every partition is a copy of the dev
    champion's exact version (source version and run id tags)."""
    require_targets("cd-model-validation", "cd-scoring")
    tested, main_head = rev(snapshot, UNDER_TEST), rev(snapshot, "main")
    assert tested != main_head  # main moved on after CI: CD must still use `tested`
    downloads = act_tmp / "downloads"
    wheel = _ci_dist(snapshot, downloads)
    event = _event(act_tmp, "workflow_run_ci_success.json", head_sha=tested, id=int(CI_RUN_ID))
    with (
        mlflow_server(act_tmp / "dev-server") as dev,
        mlflow_server(act_tmp / "prod-server") as prod,
    ):
        validated = act.run(
            "workflow_run", "cd-model-validation", event,
            # a throwaway server on loopback is a sandbox: mock data is allowed there (byod)
            variables={"MLFLOW_TRACKING_URI": dev, "MANYMODELS_DATA_URI": "mock", **AZURE},
            env={"STANDIN_AZURE_LOGIN": "allow", "STANDIN_DOWNLOADS": str(downloads), **FEW_EPOCHS},
            label="CD model validation (workflow_run after CI, shared dev registry)",
        )  # fmt: skip
        validated.assert_jobs({"model-validation": "success"})
        steps = validated.steps("model-validation")
        assert steps["Azure login (OIDC)"] == "success"
        assert steps["Download the wheel CI built"] == "success"
        assert "Upload the embedded dev registry" not in steps  # a remote registry is configured
        log = validated.output("model-validation", tail=100_000)
        assert f"checked out {tested}" in log
        assert f"dist/{wheel.name}" in log, "setup-runtime did not install CI's wheel"
        assert "requirements/dev.lock" not in log, "a CD job installed the dev tools"
        gate = _gate(validated.artifacts / "gate-report")
        dev_champions = _champion_versions(dev)
        assert dev_champions, "model validation registered no champion in the dev registry"
        assert _expected_champions(gate) <= set(dev_champions), (gate, dev_champions)
        for name, version in dev_champions.items():
            assert version.tags["git_sha"] == tested, (name, version.tags)
        assert (
            _first_line(validated.artifacts / "gate-report" / "gate.md")
            in validated.summaries["model-validation"]
        )

        scored = act.run(
            "push", "cd-scoring", "push_release.json",
            variables={
                "MLFLOW_TRACKING_URI": prod, "MANYMODELS_DEV_TRACKING_URI": dev,
                "MANYMODELS_DATA_URI": "mock",
            },
            env=FEW_EPOCHS,
            label="CD scoring (push to release/*, shared prod registry)",
        )  # fmt: skip
        scored.assert_jobs({"release-branch": "success", "release-scoring": "success"})
        release = rev(snapshot, RELEASES[-1])
        assert f"release branch {RELEASES[-1]} at {release}" in scored.output("release-branch")
        assert f"checked out {release}" in scored.output("release-scoring", tail=100_000)
        steps = scored.steps("release-scoring")
        assert EMBEDDED_STEP not in steps and "Azure login (OIDC)" not in steps
        assert steps["make release-scoring"] == "success"
        prod_champions = _champion_versions(prod)
        assert set(prod_champions) == set(dev_champions), "prod must serve exactly dev's champions"
        for name, copy in prod_champions.items():
            original = dev_champions[name]
            assert copy.tags["source_version"] == original.version, name
            assert copy.tags["source_run_id"] == original.run_id, name
            assert copy.tags["git_sha"] == tested, name
        assert _files(scored.artifacts / "predictions" / "predictions")
        assert (
            _first_line(scored.artifacts / "predictions" / "reports" / "scoring.md")
            in scored.summaries["release-scoring"]
        )
        after = {name: v.version for name, v in _champion_versions(dev).items()}
        assert after == {name: v.version for name, v in dev_champions.items()}, (
            "scoring must not change the dev registry"
        )


def test_failed_ci_does_not_start_model_validation(act: Act):
    result = act.run("workflow_run", "cd-model-validation", "workflow_run_ci_failure.json",
                     label="CD model validation after a failed CI (skipped)")  # fmt: skip
    assert result.returncode == 0 and result.jobs == {}


# ---------------------------------------------------------------- a fresh fork: embedded mode


def test_fresh_fork_model_validation_builds_an_embedded_dev_registry(act: Act):
    """No variables: the job trains into a local MLflow store and uploads it as an artifact."""
    require_targets("cd-model-validation")
    result = act.run(
        "workflow_dispatch", "cd-model-validation", "workflow_dispatch.json", env=FEW_EPOCHS,
        label="CD model validation (dispatch, embedded store)",
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

"""CD through shared dev and prod registries, run with act: model validation after CI, then
scoring on a release branch (see test_workflows_executed.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from executed_checks import (
    AZURE,
    CI_RUN_ID,
    EMBEDDED_STEP,
    FEW_EPOCHS,
    _champion_versions,
    _ci_dist,
    _event,
    _expected_champions,
    _files,
    _first_line,
    _gate,
)
from workflow_harness import RELEASES, UNDER_TEST, Act, mlflow_server, require_targets, rev

pytestmark = [pytest.mark.workflows, pytest.mark.slow]


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

"""Static checks of the monitoring workflow (issue 10): a thin monitor job, and a retrain job
that can only start model-validation CD, for the partitions monitoring put in alert."""

from __future__ import annotations

import re
import subprocess

from workflow_harness import CHECKOUT, REPO, clean_env, triggers, workflow

SETUP = "./.github/actions/setup"


def test_it_runs_weekly_and_by_hand():
    on = triggers(workflow("monitoring"))
    assert set(on) == {"schedule", "workflow_dispatch"} and on["schedule"][0]["cron"]


def test_the_monitor_job_is_checkout_setup_then_make_monitor():
    doc = workflow("monitoring")
    assert doc["permissions"] == {"contents": "read"}
    job = doc["jobs"]["monitor"]
    steps = job["steps"]
    assert (
        steps[0]["uses"].startswith(f"{CHECKOUT}@")
        and steps[0]["with"]["persist-credentials"] is False
    )
    assert steps[1] == {"uses": SETUP}
    made = [s["run"] for s in steps if "make " in s.get("run", "")]
    assert made == ["make monitor"] and "permissions" not in job
    for step in steps[2:]:
        uses = step.get("uses", "")
        assert not uses or uses.startswith("actions/upload-artifact@")
        if "run" in step and "make " not in step["run"]:
            assert "GITHUB_STEP_SUMMARY" in step["run"]
    assert job["outputs"]["retrain"] == "${{ steps.alerts.outputs.retrain }}"
    assert job["concurrency"]["cancel-in-progress"] is False and job["timeout-minutes"] <= 90


def test_the_retrain_job_may_only_start_model_validation_for_the_partitions_in_alert():
    doc = workflow("monitoring")
    job = doc["jobs"]["retrain"]
    assert job["needs"] == "monitor" and job["permissions"] == {"actions": "write"}
    assert "needs.monitor.outputs.retrain != ''" in job["if"]
    (step,) = job["steps"]
    assert "uses" not in step  # no checkout, no third-party code next to a write token
    run = step["run"]
    assert "gh workflow run cd-model-validation.yml" in run and '-f partitions="$PARTITIONS"' in run
    assert re.search(r"=~ \^\[a-z0-9\.,-\]\+\$", run), "the partition list is validated first"
    assert job["env"]["PARTITIONS"] == "${{ needs.monitor.outputs.retrain }}"


def test_model_validation_takes_the_partitions_and_passes_them_validated():
    doc = workflow("cd-model-validation")
    inputs = triggers(doc)["workflow_dispatch"]["inputs"]
    assert inputs["partitions"]["default"] == ""
    (step,) = [s for s in doc["jobs"]["model-validation"]["steps"] if "make " in s.get("run", "")]
    assert step["env"]["PARTITIONS"] == "${{ inputs.partitions }}"
    assert step["run"] == "make model-validation"  # the make target checks and passes them
    recipe = subprocess.run(
        ["make", "-C", str(REPO), "-n", "model-validation"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    assert "=~" in recipe and "training.partitions=[${PARTITIONS}]" in recipe

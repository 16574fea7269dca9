"""``manymodels doctor`` derives its checklist from the workflow files and reports what is set,
missing or unknown; ``gh`` and ``az`` here are stand-in scripts on PATH answering like the real
CLIs, so the test runs offline. Missing things never fail unless ``--strict``."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from manymodels.steps import doctor

ROOT = Path(__file__).parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
REPO = "acme/forecasts"


def stand_in(folder: Path, name: str, answers: dict[str, object]) -> None:
    """An executable ``name`` that prints the JSON answer of the first key its args contain."""
    lines = ["#!/bin/sh", 'args="$*"']
    for key, answer in answers.items():
        lines.append(f'case "$args" in *"{key}"*) echo \'{json.dumps(answer)}\'; exit 0;; esac')
    lines.append("exit 1")
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def clean_path(tmp_path, monkeypatch) -> Path:
    """PATH without gh and az (plus an empty folder for stand-ins)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    keep = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "gh").exists()]
    keep = [p for p in keep if not (Path(p) / "az").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), *keep]))
    monkeypatch.delenv("AZURE_CLIENT_ID", raising=False)
    return bin_dir


def test_the_checklist_comes_from_the_workflows():
    items = doctor.required(WORKFLOWS, REPO)
    found = {(i.kind, i.name, i.scope) for i in items}
    assert ("environment", "dev", "repo") in found and ("environment", "prod", "repo") in found
    assert ("variable", "MLFLOW_TRACKING_URI", "dev") in found
    assert ("variable", "AZURE_CLIENT_ID", "prod") in found
    assert ("federated credential", f"repo:{REPO}:environment:prod", "prod") in found
    assert not any(i.name == "GITHUB_TOKEN" for i in items)


def test_without_gh_or_az_everything_is_unknown_and_the_run_still_passes(clean_path, caplog):
    assert doctor.main(["--workflows", str(WORKFLOWS), "--repo", REPO, "--strict"]) == 0
    assert "0 ok, 0 missing" in caplog.text and "install and log in to gh" in caplog.text
    assert f"gh api -X PUT repos/{REPO}/environments/prod" in caplog.text


def test_gh_and_az_answers_say_what_is_set_and_what_is_missing(clean_path, monkeypatch, caplog):
    stand_in(
        clean_path,
        "gh",
        {
            "environments": ["dev"],
            "variable list --repo acme/forecasts --env dev": [{"name": "MLFLOW_TRACKING_URI"}],
            "variable list": [{"name": "AZURE_CLIENT_ID"}],
            "secret list": [],
        },
    )
    stand_in(
        clean_path, "az", {"federated-credential": [{"subject": f"repo:{REPO}:environment:dev"}]}
    )
    monkeypatch.setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000000")
    items = doctor.check(doctor.required(WORKFLOWS, REPO), REPO)
    status = {(i.kind, i.name, i.scope): i.status for i in items}
    assert status[("environment", "dev", "repo")] == "ok"
    assert status[("environment", "prod", "repo")] == "missing"
    assert status[("variable", "MLFLOW_TRACKING_URI", "dev")] == "ok"
    assert status[("variable", "AZURE_CLIENT_ID", "prod")] == "ok"  # a repository variable
    assert status[("variable", "MLFLOW_TRACKING_URI", "prod")] == "missing"
    assert status[("federated credential", f"repo:{REPO}:environment:dev", "dev")] == "ok"
    assert status[("federated credential", f"repo:{REPO}:environment:prod", "prod")] == "missing"
    assert doctor.main(["--workflows", str(WORKFLOWS), "--repo", REPO, "--strict"]) == 1
    assert "az ad app federated-credential create" in caplog.text


def test_from_env_reads_the_variables_a_workflow_job_exports(clean_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    items = doctor.check(doctor.required(WORKFLOWS, REPO), REPO, from_env=True)
    status = {(i.kind, i.name, i.scope): i.status for i in items}
    assert status[("variable", "MLFLOW_TRACKING_URI", "dev")] == "ok"
    assert status[("secret", "DATABRICKS_TOKEN", "dev")] == "missing"
    assert status[("environment", "dev", "repo")] == "unknown"


def test_the_repository_comes_from_github_or_the_origin_remote(monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/fork")
    assert doctor._repo("") == "someone/fork" and doctor._repo("a/b") == "a/b"


def test_outside_a_repository_doctor_says_where_to_run(tmp_path, caplog):
    assert doctor.main(["--workflows", str(tmp_path / "none")]) == 2
    assert "run it from the repository root" in caplog.text

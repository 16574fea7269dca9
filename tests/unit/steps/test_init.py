"""``manymodels init`` renames a copy of the template consistently, refuses names the platforms
would refuse, and a fork initialised with new names passes its own tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from manymodels.config import load_settings
from manymodels.steps import init

ROOT = Path(__file__).parents[3]


def tracked_files() -> list[str]:
    """The files a fork gets: tracked, plus new ones not ignored (this branch's own work)."""
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [f for f in done.stdout.split("\0") if f and (ROOT / f).is_file()]


def fork(target: Path, only: tuple[str, ...] = ()) -> Path:
    for rel in tracked_files():
        if only and not rel.startswith(only):
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target / rel)
    return target


@pytest.fixture
def template(tmp_path) -> Path:
    return fork(tmp_path / "fork", ("pipelines/", ".cloud/", "README.md", "Makefile"))


def env_file(root: Path, env: str) -> dict[str, str]:
    return init._read_env(root / ".cloud" / "env" / f"{env}.env")


def test_init_renames_the_project_registry_and_cloud_resources(template):
    argv = ["--root", str(template), "--name", "acme-demand", "--model-prefix", "sales"]
    assert init.main([*argv, "--title", "Acme demand", "--location", "westeurope"]) == 0
    settings = load_settings(template / "pipelines", "dev")
    assert settings.project.name == "acme-demand" and settings.mlflow.experiment == "acme-demand"
    assert settings.mlflow.model_prefix == "sales"
    dev, prod = env_file(template, "dev"), env_file(template, "prod")
    assert dev["WORKSPACE"] == "mlw-acme-demand-dev" and prod["WORKSPACE"] == "mlw-acme-demand-prod"
    assert prod["ONLINE_ENDPOINT"] == "acme-demand-online-prod" and dev["LOCATION"] == "westeurope"
    assert set(dev) == set(prod) == set(env_file(ROOT, "dev"))
    cloud = template / ".cloud" / "azureml"
    assert "name: mlw-acme-demand-dev" in (cloud / "workspace.yml").read_text()
    assert "name: acme-demand-online-dev" in (cloud / "online-endpoint.yml").read_text()
    assert "endpoint_name: acme-demand-online-dev" in (cloud / "online-deployment.yml").read_text()
    assert "endpoint_name: acme-demand-batch-dev" in (cloud / "batch-deployment.yml").read_text()
    assert "name: acme-demand" in (cloud / "environment.yml").read_text()
    train = (cloud / "components" / "train.yml").read_text()
    assert "environment: azureml:acme-demand@latest" in train
    assert "python -m manymodels.steps.train" in train  # the package keeps its name
    job = (cloud / "jobs" / "training-pipeline.yml").read_text()
    assert "azureml:acme-demand-raw@latest" in job and "experiment_name: acme-demand" in job
    assert "azureml:acme-demand-raw@latest" in (cloud / "scoring-inputs.yaml").read_text()
    assert "manymodels-raw-sample" in (cloud / "data" / "raw-sample.yml").read_text()
    assert (template / "README.md").read_text().startswith("# Acme demand\n")
    comments = (template / "pipelines" / "project.yaml").read_text()
    assert "model_prefix: sales             # registered model name" in comments


def test_init_twice_re_applies_the_new_names(template):
    assert init.main(["--root", str(template), "--name", "first-name"]) == 0
    assert init.main(["--root", str(template), "--name", "second-name", "--catalog", "main"]) == 0
    settings = load_settings(template / "pipelines", "dev")
    assert settings.mlflow.model_prefix == "second_name" and settings.mlflow.catalog == "main"
    assert env_file(template, "dev")["BATCH_ENDPOINT"] == "second-name-batch-dev"
    train = (template / ".cloud" / "azureml" / "components" / "train.yml").read_text()
    assert "azureml:second-name@latest" in train and "first-name" not in train


def test_a_dry_run_writes_nothing(template, caplog):
    before = (template / "pipelines" / "project.yaml").read_text()
    assert init.main(["--root", str(template), "--name", "acme", "--dry-run"]) == 0
    assert (template / "pipelines" / "project.yaml").read_text() == before
    assert "would change pipelines/project.yaml" in caplog.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "Acme"], "lower-case"),
        (["--name", "a-name-that-is-far-too-long"], "3-20"),
        (["--name", "acme", "--model-prefix", "a.b"], "no '.'"),
        (["--name", "acme", "--catalog", "Main"], "Unity Catalog identifier"),
        (["--name", "acme", "--drop-mock"], "declare your real data"),
    ],
)
def test_bad_names_are_refused_before_anything_changes(template, caplog, args, message):
    before = {p: p.read_text() for p in template.rglob("*") if p.is_file()}
    assert init.main(["--root", str(template), *args]) == 2
    assert message in caplog.text
    assert {p: p.read_text() for p in template.rglob("*") if p.is_file()} == before


def test_outside_a_repository_init_says_where_to_run(tmp_path, caplog):
    assert init.main(["--root", str(tmp_path), "--name", "acme"]) == 2
    assert "run it from the repository root" in caplog.text


def test_declaring_real_data_installs_the_contract_and_drops_the_mock_fallback(template, tmp_path):
    contract = tmp_path / "data.yaml"
    contract.write_text("sources:\n  - {name: sales, kind: sales, path: sales.csv}\n")
    argv = ["--root", str(template), "--name", "acme", "--data", str(contract), "--drop-mock"]
    assert init.main(argv) == 0
    assert (template / "pipelines" / "data.yaml").read_text() == contract.read_text()
    makefile = (template / "Makefile").read_text()
    assert "|| $(MM) mock" not in makefile and "release-scoring:" in makefile


def test_a_file_that_is_not_a_data_contract_is_refused(template, tmp_path, caplog):
    contract = tmp_path / "data.yaml"
    contract.write_text("just: a mapping\n")
    assert init.main(["--root", str(template), "--name", "acme", "--data", str(contract)]) == 2
    assert "not a data contract" in caplog.text


@pytest.mark.slow  # copies the repository and runs part of its suite in a new process (~40 s)
def test_a_fork_initialised_with_new_names_passes_its_own_tests(tmp_path):
    target = fork(tmp_path / "acme")
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(target / "code"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("COVERAGE_PROCESS_START", None)
    run = {"cwd": target, "env": env, "capture_output": True, "text": True}
    argv = ["--name", "acme-sales", "--model-prefix", "acme", "--title", "Acme sales forecasts"]
    done = subprocess.run([python, "-m", "manymodels.steps.init", *argv], **run, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    code = "import manymodels; print(manymodels.__file__)"
    where = subprocess.run([python, "-c", code], **run, check=True)
    assert where.stdout.strip().startswith(str(target)), "the fork must test its own code"
    tests = ["tests/unit/test_config.py", "tests/unit/test_cloud_specs.py", "-k"]
    tests.append("not every_file_loads and not make_cloud_image")
    done = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests], **run, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
    assert load_settings(target / "pipelines", "prod").mlflow.model_prefix == "acme"

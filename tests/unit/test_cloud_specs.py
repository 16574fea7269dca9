"""Every Azure ML file under .cloud/ loads with azure-ai-ml (offline) and its references hold:
component code folders and entry scripts exist, every component runs the environment built from
the wheel, command lines use only the inputs they declare and the options the step modules take,
and the pipelines list the steps of pipelines/*.yaml. A broken spec fails the PR, not the deploy.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from manymodels.config import load_settings

# azure-ai-ml is imported by the first test that loads a spec, not at collection: its import is
# ~4 CPU-s, and every pytest-xdist worker collects this module while one of them runs it
try:
    AZURE_ML = importlib.util.find_spec("azure.ai.ml")
except ModuleNotFoundError:
    AZURE_ML = None
if AZURE_ML is None:
    pytest.skip("azure-ai-ml comes with the dev extra", allow_module_level=True)

pytestmark = pytest.mark.filterwarnings(
    "ignore::marshmallow.warnings.RemovedInMarshmallow4Warning",  # azure-ai-ml's, not ours
    "ignore::DeprecationWarning",
)
ROOT = Path(__file__).parents[2]
CLOUD = ROOT / ".cloud"
AZUREML = CLOUD / "azureml"
FILES = sorted(AZUREML.rglob("*.yml"))

# the $schema a file declares picks its loader (the one `az ml <noun> create --file` applies)
LOADERS = {  # functions of azure.ai.ml.entities._load_functions (azure.ai.ml exports them)
    "workspace": "load_workspace",
    "amlCompute": "load_compute",
    "environment": "load_environment",
    "data": "load_data",
    "commandComponent": "load_component",
    "parallelComponent": "load_component",
    "pipelineComponent": "load_component",
    "pipelineJob": "load_job",
    "batchEndpoint": "load_batch_endpoint",
    "pipelineComponentBatchDeployment": "load_pipeline_component_batch_deployment",
    "batchDeployment": "load_batch_deployment",
    "managedOnlineEndpoint": "load_online_endpoint",
    "managedOnlineDeployment": "load_online_deployment",
}


def kind(path: Path) -> str:
    schema = yaml.safe_load(path.read_text()).get("$schema", "")
    return schema.rsplit("/", 1)[-1].removesuffix(".schema.json")


def load(path: Path):
    from azure.ai.ml.entities import _load_functions  # noqa: PLC0415 (see AZURE_ML)

    return getattr(_load_functions, LOADERS[kind(path)])(str(path))


def env_values(name: str) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (CLOUD / "env" / f"{name}.env").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def of_kind(*kinds: str) -> list[Path]:
    return [p for p in FILES if kind(p) in kinds]


COMMANDS = of_kind("commandComponent")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(AZUREML)))
def test_every_file_loads_with_azure_ai_ml(path):
    assert kind(path) in LOADERS, f"{path}: no loader for $schema {kind(path)!r}"
    entity = load(path)
    validate = getattr(entity, "_validate", None)
    if validate is not None:  # jobs and components: the checks `az ml` runs before sending
        result = validate()
        assert result is None or result.passed, f"{path}: {result.error_messages}"


def test_the_whole_cloud_side_is_there():
    kinds = {kind(p) for p in FILES}
    wanted = {"workspace", "amlCompute", "environment", "data", "commandComponent"}
    wanted |= {"parallelComponent", "pipelineComponent", "pipelineJob", "batchEndpoint"}
    wanted.add("pipelineComponentBatchDeployment")
    assert wanted <= kinds, f"missing: {wanted - kinds}"


def test_a_broken_spec_fails_to_load(tmp_path):
    bad = tmp_path / "compute.yml"
    text = (AZUREML / "compute.yml").read_text().replace("min_instances: 0", "min_instances: x")
    bad.write_text(text)
    with pytest.raises(Exception, match="min_instances"):
        load(bad)


def test_the_cluster_scales_from_zero():
    compute = load(AZUREML / "compute.yml")
    assert compute.min_instances == 0 and compute.idle_time_before_scale_down <= 600


@pytest.mark.parametrize("path", of_kind("commandComponent", "parallelComponent"))
def test_components_code_exists_and_runs_in_the_wheel_environment(path):
    component = load(path)
    code = component.task["code"] if component.type == "parallel" else component.code
    assert (path.parent / code).is_dir(), f"{path}: code folder {code} does not exist"
    environment = component.task["environment"] if component.type == "parallel" else None
    environment = environment or component.environment
    name = load(AZUREML / "environment.yml").name
    assert str(environment).removeprefix("azureml:") == f"{name}@latest", path


def test_the_parallel_entry_script_hands_over_to_the_package():
    component = load(AZUREML / "components" / "train-partitions.yml")
    script = AZUREML / "components" / component.task["code"] / component.task["entry_script"]
    spec = importlib.util.spec_from_file_location("train_partitions", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from manymodels import azureml_parallel  # noqa: PLC0415

    assert module.init is azureml_parallel.init and module.run is azureml_parallel.run
    # a mini-batch is one block of the train step's: as many files as training.block_size
    assert component.mini_batch_size == load_settings(ROOT / "pipelines", "dev").training.block_size
    assert component.input_data == "${{inputs.partitions}}"


def test_the_environment_installs_the_wheel_by_path_never_by_name():
    environment = load(AZUREML / "environment.yml")
    assert environment.build is not None and environment.image is None
    dockerfile = (AZUREML / environment.build.path / environment.build.dockerfile_path).read_text()
    installs = " ".join(re.findall(r"pip install([^\n]*)", dockerfile.replace("\\\n", " ")))
    words = [w for w in installs.split() if not w.startswith("-")]
    assert any(w.endswith("manymodels-*.whl") for w in words), installs
    assert not any(re.fullmatch(r"manymodels([<>=!~].*)?", w) for w in words), installs


def test_make_cloud_image_builds_a_context_with_everything_the_dockerfile_copies(tmp_path):
    wheels = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    context = tmp_path / "context"
    subprocess.run(
        ["make", "--no-print-directory", "cloud-image"]
        + [f"CLOUD_CONTEXT={context}", f"WHEELS={wheels}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    dockerfile = (context / "Dockerfile").read_text()
    # what `az ml environment create` uploads: .amlignore, else .gitignore, decides
    shutil.copy2(AZUREML / "image" / ".amlignore", context)
    shutil.copy2(AZUREML / "image" / ".gitignore", context)
    from azure.ai.ml._utils._asset_utils import get_ignore_file  # noqa: PLC0415 (see AZURE_ML)

    ignore = get_ignore_file(context)
    for source in re.findall(r"^COPY\s+(\S+)\s+\S+", dockerfile, flags=re.M):
        found = list(context.glob(source.rstrip("/")))
        assert found, f"the Dockerfile copies missing {source}"
        files = [f for p in found for f in ([p] if p.is_file() else p.rglob("*"))]
        assert not any(ignore.is_file_excluded(f) for f in files), f"{source} is not uploaded"
    (wheel,) = (context / "wheels").glob("manymodels-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert "manymodels/azureml_parallel.py" in zf.namelist()
    pins = (context / "constraints.txt").read_text()
    assert pins == (ROOT / "requirements" / "constraints.txt").read_text()


# --- command lines: declared inputs only, and options the step modules accept ------------------


class _Parsed(Exception):
    """Raised in place of running the step once its parser accepted the arguments."""


def parse_with_step_parser(step: str, argv: list[str], monkeypatch) -> argparse.Namespace:
    """Parse ``argv`` with the real parser of ``manymodels.steps.<step>``, running nothing."""
    real = argparse.ArgumentParser.parse_args

    def accept(self, args=None, namespace=None):
        raise _Parsed(real(self, args, namespace))  # an unknown option exits 2 in here

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", accept)
    module = importlib.import_module(f"manymodels.steps.{step}")
    with pytest.raises(_Parsed) as parsed:
        module.main(argv)
    return parsed.value.args[0]


def sample_value(name: str, port) -> str:
    if name == "env":
        return "dev"
    if port.type == "integer":
        return "3"
    if port.type == "string":
        return "2018-03-01"
    return f"/mnt/{name}"


def step_command(component) -> tuple[str, list[str]]:
    """The step and argv of the ``python -m manymodels.steps.<step>`` part of a command."""
    command = component.command
    for name, port in component.inputs.items():
        command = command.replace(f"${{{{inputs.{name}}}}}", sample_value(name, port))
    for name in component.outputs:
        command = command.replace(f"${{{{outputs.{name}}}}}", f"/mnt/out/{name}")
    command = re.sub(r"\$\[\[(.*?)\]\]", r"\1", command)  # optional parts, given
    assert "${{" not in command, f"{component.name}: undeclared reference in {command}"
    for part in command.split("&&"):
        words = shlex.split(part)
        if words[:2] == ["python", "-m"] and words[2].startswith("manymodels.steps."):
            return words[2].rsplit(".", 1)[-1], words[3:]
    raise AssertionError(f"{component.name}: no `python -m manymodels.steps.<step>` in {command}")


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.stem)
def test_component_commands_use_every_declared_input(path):
    component = load(path)
    for name in component.inputs:
        assert f"${{{{inputs.{name}}}}}" in component.command, f"{path}: input {name} unused"
    for name in component.outputs:
        assert f"${{{{outputs.{name}}}}}" in component.command, f"{path}: output {name} unused"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: p.stem)
def test_component_commands_are_accepted_by_the_step_modules(path, monkeypatch):
    component = load(path)
    step, argv = step_command(component)
    assert component.name == f"manymodels_{step}"
    args = parse_with_step_parser(step, argv, monkeypatch)
    assert args.config_dir == "." and args.env == "dev"
    assert "project.workdir=/mnt/out/workdir" in args.overrides


def test_the_option_check_catches_an_option_a_step_does_not_take(monkeypatch):
    with pytest.raises(SystemExit):
        parse_with_step_parser("partition", ["--no-such-option", "1"], monkeypatch)


def test_the_pipelines_run_the_steps_their_yaml_lists():
    settings = load_settings(ROOT / "pipelines", "dev")
    training = load(AZUREML / "jobs" / "training-pipeline.yml")
    assert list(training.jobs) == list(settings.training.steps)
    scoring = load(AZUREML / "components" / "scoring-pipeline.yml")
    assert list(scoring.jobs) == list(settings.scoring.steps)
    parallel = load(AZUREML / "jobs" / "train-parallel.yml")
    assert list(parallel.jobs)[:3] == ["condition", "validate", "partition"]
    assert parallel.jobs["train_partitions"].type == "parallel"


def test_the_batch_deployment_declares_its_inputs_and_outputs():
    deployment = load(AZUREML / "batch-deployment.yml")
    endpoint = load(AZUREML / "batch-endpoint.yml")
    assert deployment.endpoint_name == endpoint.name
    assert {"raw", "as_of"} <= set(deployment.component.inputs)
    assert set(deployment.component.outputs) == {"predictions", "monitoring"}
    invoke = yaml.safe_load((AZUREML / "scoring-inputs.yaml").read_text())["inputs"]
    assert set(invoke) <= set(deployment.component.inputs)
    assert invoke["raw"]["path"] == f"azureml:{env_values('dev')['RAW_DATA']}@latest"


def test_data_assets_point_at_the_raw_sources():
    sample = load(AZUREML / "data" / "raw-sample.yml")
    assert Path(sample.path).is_dir() and (Path(sample.path) / "shipments.csv").exists()
    raw = load(AZUREML / "data" / "raw.yml")
    assert raw.type == "uri_folder" and raw.path.startswith("azureml://datastores/")


def test_dev_and_prod_set_the_same_names_and_the_yaml_defaults_are_dev():
    dev, prod = env_values("dev"), env_values("prod")
    assert set(dev) == set(prod)
    assert dev["RESOURCE_GROUP"] != prod["RESOURCE_GROUP"] and dev["WORKSPACE"] != prod["WORKSPACE"]
    assert load(AZUREML / "workspace.yml").name == dev["WORKSPACE"]
    assert load(AZUREML / "compute.yml").name == dev["COMPUTE"]
    assert load(AZUREML / "compute.yml").max_instances == int(dev["COMPUTE_MAX_INSTANCES"])
    assert load(AZUREML / "environment.yml").name == dev["ENVIRONMENT"]
    assert load(AZUREML / "data" / "raw.yml").name == dev["RAW_DATA"]
    assert load(AZUREML / "batch-endpoint.yml").name == dev["BATCH_ENDPOINT"]
    for path in of_kind("pipelineJob"):
        job = load(path)
        assert job.settings.default_compute.removeprefix("azureml:") == dev["COMPUTE"]
        assert job.experiment_name == dev["EXPERIMENT"]
        assert job.inputs["raw"].path.removeprefix("azureml:") == f"{dev['RAW_DATA']}@latest"


def test_the_readme_gives_an_apply_command_for_every_file():
    readme = (CLOUD / "README.md").read_text()
    for path in FILES:
        rel = path.relative_to(CLOUD).as_posix()
        if path.parent.name != "components":  # components come with the jobs that use them
            assert rel in readme, f".cloud/README.md does not say how to apply {rel}"


def test_the_parallel_components_arguments_are_accepted_by_its_entry(tmp_path, monkeypatch):
    from manymodels import azureml_parallel  # noqa: PLC0415

    component = load(AZUREML / "components" / "train-partitions.yml")
    given = {"config": str(ROOT / "pipelines"), "env": "prod", "epochs": "2", "partitions": "/p"}
    text = component.task["program_arguments"]
    for name in component.inputs:
        text = text.replace(f"${{{{inputs.{name}}}}}", given[name])
    text = text.replace("${{outputs.staged}}", str(tmp_path / "staged"))
    text = re.sub(r"\$\[\[(.*?)\]\]", r"\1", text)
    assert "${{" not in text, text
    monkeypatch.setattr(azureml_parallel, "_state", {})
    settings = azureml_parallel.init(shlex.split(text))
    assert settings.env == "prod" and settings.training.nn.epochs == 2
    assert (tmp_path / "staged").is_dir()

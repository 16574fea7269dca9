"""The Azure ML online deployment runs the same app with the policy as environment settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from manymodels.config import load_settings
from manymodels.steps.serve import env_overrides

CLOUD = Path(__file__).parents[3] / ".cloud" / "azureml"


def test_online_deployment_sets_a_valid_policy_and_no_single_partition(config_dir, monkeypatch):
    spec = yaml.safe_load((CLOUD / "online-deployment.yml").read_text())
    assert "demand." not in str(spec.get("model"))  # no hard-coded partition model
    routes = spec["environment"]["inference_config"]
    assert routes["scoring_route"]["path"] == "/v1/forecast"
    assert routes["readiness_route"]["path"] == "/ready"
    assert (CLOUD.parents[1] / spec["environment"]["build"]["dockerfile_path"]).exists()
    variables = spec["environment_variables"]
    policy = env_overrides({k: str(v) for k, v in variables.items()})
    assert len(policy) == len([k for k in variables if k.startswith("MANYMODELS_SERVING_")]) >= 5
    monkeypatch.setenv("AZUREML_MODEL_DIR", "/var/azureml-app/models")
    settings = load_settings(config_dir, "prod", policy)
    assert settings.serving.max_models == int(variables["MANYMODELS_SERVING_MAX_MODELS"])
    dockerfile = (CLOUD / "online.Dockerfile").read_text()
    assert '"manymodels", "serve"' in dockerfile and "MANYMODELS_SERVING_PORT=8080" in dockerfile

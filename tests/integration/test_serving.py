"""Serving after a real release: trained ensembles promoted to prod, batch scoring writes the
snapshot, and the online API answers with the same forecasts batch scoring wrote."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import requests

from manymodels import registry
from manymodels.config import load_settings
from manymodels.serve.app import create_app, in_background
from manymodels.serve.snapshot import snapshot_path
from manymodels.steps.serve import build_service

pytestmark = pytest.mark.slow

TODAY = dt.date.today()


def test_served_forecasts_equal_batch_predictions(trained):
    assert trained.run("promote", "--env", "prod", "--to", "prod") == 0
    assert trained.run("score", "--env", "prod", "--as-of", str(TODAY)) == 0
    settings = load_settings("pipelines", "prod", [f"project.workdir={trained.work}"])
    assert snapshot_path(settings).exists()
    batch = pd.read_parquet(
        trained.work / "predictions" / f"scoring_date={TODAY}" / "predictions.parquet"
    )
    service = build_service(settings, registry.resolve_store(settings, "prod"))
    keys = batch.drop_duplicates("partition")[["store_id", "product_id", "partition"]]
    with in_background(create_app(service)) as url:
        body = {"series": keys[["store_id", "product_id"]].to_dict("records"), "weeks": 4}
        response = requests.post(f"{url}/v1/forecast", json=body, timeout=120)
    assert response.status_code == 200, response.text
    answers = response.json()["forecasts"]
    assert [a["partition"] for a in answers] == keys["partition"].tolist()
    kinds = set()
    for answer in answers:
        mine = batch[(batch["store_id"] == answer["store_id"])
                     & (batch["product_id"] == answer["product_id"])]  # fmt: skip
        assert answer["model"]["version"] == mine["model_version"].iloc[0]
        assert [w["prediction"] for w in answer["forecasts"]] == pytest.approx(
            mine["prediction"].tolist(), rel=1e-6
        )
        kinds.add(mine["model_kind"].iloc[0])
    assert "ensemble" in kinds  # the network member loads and answers too

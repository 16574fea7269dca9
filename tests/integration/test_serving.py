"""Serving after a real release: trained ensembles promoted to prod, batch scoring writes the
snapshot, and the online API answers with the same forecasts batch scoring wrote, new series
and class-changed products included (over real HTTP to a `manymodels serve` process)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import requests

from manymodels import registry
from manymodels.config import load_settings
from manymodels.data.partition import split_partitions
from manymodels.features import COVARIATES
from manymodels.serve.app import create_app, in_background
from manymodels.serve.snapshot import snapshot_path
from manymodels.steps.condition import read_conditioned
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _manymodels_serve(args: list[str]):
    """``manymodels serve`` in its own process on a free loopback port, until it is ready."""
    port = _free_port()
    command = [sys.executable, "-m", "manymodels", "serve", "--port", str(port), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                if requests.get(f"{url}/ready", timeout=30).status_code == 200:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("manymodels serve was not ready within 300 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _rows(frame: pd.DataFrame) -> tuple[list[dict], list[dict]]:
    """One series' conditioned rows as a request's history and future."""
    covariates = [c for c in COVARIATES if c in frame]
    history, future = [], []
    for r in frame.sort_values("week").to_dict("records"):
        row = {"week": f"{r['week']:%F}"}
        row |= {c: None if pd.isna(r[c]) else float(r[c]) for c in covariates}
        if pd.isna(r["units"]):
            future.append(row)
        else:
            history.append(row | {"units": float(r["units"])})
    return history, future


def test_manymodels_serve_answers_new_series_and_class_changes_as_batch_scoring(trained):
    """A new series (the baseline inside its ensemble answers) and a product whose class changed
    (the partition it was trained in answers): the same forecasts over HTTP from `manymodels
    serve` as batch scoring wrote, and the answer says which model answered."""
    settings = load_settings("pipelines", "dev", [f"project.workdir={trained.work}"])
    store = registry.resolve_store(settings)
    table, manifest = read_conditioned(trained.work / "conditioned")
    keys = settings.partition.keys
    parts = split_partitions(table, keys)

    def champion(pid):
        return registry.alias_of(store, registry.model_name(settings, pid), registry.CHAMPION)

    kinds = {pid: champion(pid).tags.get("model_kind") for pid in parts}
    young_pid = next(p for p, k in sorted(kinds.items()) if k == "ensemble")
    # a product of one class whose (region, format) has a champion of the other class
    moved = None
    for pid in sorted(parts):
        *place, speed = pid.split(".")
        other = "fast" if speed == "slow" else "slow"
        if ".".join([*place, other]) in parts and pid != young_pid:
            moved = (str(parts[pid]["product_id"].iloc[0]), other, speed, pid)
            break
    assert moved is not None, "the sample has no region x format with both speeds"
    product, was, now, now_pid = moved
    # a new series: one of an ensemble partition's other products that first sold 5 weeks
    # before the end
    rows = parts[young_pid]
    young = rows.loc[rows["product_id"].astype(str) != product, ["store_id", "product_id"]].iloc[0]
    mine = (table["store_id"] == young["store_id"]) & (table["product_id"] == young["product_id"])
    last = table.loc[table["units"].notna(), "week"].max()
    table.loc[mine & (table["week"] <= last - pd.Timedelta(weeks=5)), "units"] = 0.0
    manifest["against_training"] = {"compared": True, "class_changes": {product: [was, now]}}
    folder = trained.work / "conditioned-lifecycle"
    folder.mkdir()
    table.to_parquet(folder / "demand.parquet", index=False)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    as_of = TODAY + dt.timedelta(days=1)
    assert trained.run("score", "--data", str(folder), "--as-of", str(as_of)) == 0
    batch = pd.read_parquet(
        trained.work / "predictions" / f"scoring_date={as_of}" / "predictions.parquet"
    )
    batch["series"] = batch["store_id"].astype(str) + "/" + batch["product_id"].astype(str)
    young_key = f"{young['store_id']}/{young['product_id']}"
    assert set(batch.loc[batch["series"] == young_key, "model_kind"]) == {"baseline (new series)"}
    routed = batch[batch["product_id"].astype(str) == product]
    assert not routed.empty and not routed["partition"].eq(now_pid).any()  # batch routed it back
    # keys for one series of every partition, the new series and every series of the product;
    # the new series and one of the product's (naming its partition now) also with their rows
    picked = pd.concat([batch.drop_duplicates("partition"), batch[batch["series"] == young_key],
                        routed]).drop_duplicates("series")  # fmt: skip
    series = [{"store_id": str(s), "product_id": str(p)}
              for s, p in picked[["store_id", "product_id"]].itertuples(index=False)]  # fmt: skip
    for key, extra in ((young_key, {}), (routed["series"].iloc[0], {"partition": now_pid})):
        store_id, product_id = key.split("/")
        rows = table[(table["store_id"].astype(str) == store_id)
                     & (table["product_id"].astype(str) == product_id)]  # fmt: skip
        history, future = _rows(rows)
        series.append({"store_id": store_id, "product_id": product_id, **extra,
                       "history": history, "future": future})  # fmt: skip
    with _manymodels_serve(trained.args()) as url:
        response = requests.post(f"{url}/v1/forecast", json={"series": series}, timeout=300)
    assert response.status_code == 200, response.text
    answers = response.json()["forecasts"]
    assert len(answers) == len(series)
    for answer in answers:
        key = f"{answer['store_id']}/{answer['product_id']}"
        want = batch[batch["series"] == key].sort_values("week")
        assert answer["partition"] == want["partition"].iloc[0], key
        assert answer["model"]["version"] == want["model_version"].iloc[0]
        assert answer["model"]["kind"] == want["model_kind"].iloc[0], key
        assert answer["model"]["fallback"] is (key == young_key)
        assert [w["prediction"] for w in answer["forecasts"]] == pytest.approx(
            want["prediction"].tolist(), rel=1e-6
        ), key
        if answer["product_id"] == product:
            assert answer["class_change"] == (
                f"trained as {was}, now {now}: answered by the {was} model"
            )
        else:
            assert answer["class_change"] is None

"""POST /v1/forecast and the operational routes, over real HTTP."""

from __future__ import annotations

import pandas as pd
import pytest
import requests

from manymodels import registry
from manymodels.features import COVARIATES
from manymodels.scoring import predict_future


def post(url, series, weeks=4, **extra):
    body = {"series": series, "weeks": weeks, **extra}
    return requests.post(f"{url}/v1/forecast", json=body, timeout=30)


def a_series(reg, pid=None):
    pid = pid or next(iter(reg.parts))
    row = reg.parts[pid].iloc[0]
    return pid, {"store_id": str(row["store_id"]), "product_id": str(row["product_id"])}


def test_forecast_from_keys_equals_the_batch_forecast_of_the_same_model(reg, serve):
    url, _ = serve()
    pid, series = a_series(reg)
    response = post(url, [series], weeks=4)
    assert response.status_code == 200, response.text
    (answer,) = response.json()["forecasts"]
    assert answer["partition"] == pid and answer["source"] == "snapshot"
    assert answer["model"] == {
        "name": reg.name(pid), "version": reg.versions[pid], "alias": "champion", "stale": False,
        "kind": "baseline", "fallback": False,
    }  # fmt: skip
    batch = predict_future(reg.parts[pid], registry.load(reg.store, reg.name(pid), "champion"))
    mine = batch[
        (batch["store_id"] == series["store_id"]) & (batch["product_id"] == series["product_id"])
    ]
    assert [w["week"] for w in answer["forecasts"]] == mine["week"].dt.strftime("%F").tolist()
    assert [w["prediction"] for w in answer["forecasts"]] == pytest.approx(
        mine["prediction"].tolist()
    )
    assert all(w["lower"] is None and w["upper"] is None for w in answer["forecasts"])
    assert response.json()["snapshot_written_at"]


def test_fewer_weeks_and_many_series_across_partitions(reg, serve):
    url, _ = serve()
    series = [a_series(reg, pid)[1] for pid in reg.parts]
    response = post(url, series, weeks=2)
    assert response.status_code == 200, response.text
    answers = response.json()["forecasts"]
    assert [a["partition"] for a in answers] == list(reg.parts)
    assert all(len(a["forecasts"]) == 2 for a in answers)


def test_openapi_health_and_ready(serve):
    url, _ = serve()
    assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{url}/ready", timeout=5)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["series"] == 24
    assert "/v1/forecast" in requests.get(f"{url}/openapi.json", timeout=5).json()["paths"]
    assert requests.get(f"{url}/docs", timeout=5).status_code == 200


def test_not_ready_without_a_snapshot_and_says_why(tmp_path, reg, serve):
    url, _ = serve(snapshot=str(tmp_path / "none.parquet"))
    ready = requests.get(f"{url}/ready", timeout=5)
    assert ready.status_code == 503
    assert "run batch scoring" in ready.json()["problems"]["snapshot"]
    response = post(url, [a_series(reg)[1]])
    assert response.status_code == 503 and "no feature snapshot" in response.json()["detail"]


def test_unknown_series_is_404_naming_it(serve):
    url, _ = serve()
    response = post(url, [{"store_id": "nowhere", "product_id": "nothing"}])
    assert response.status_code == 404
    assert "store_id=nowhere product_id=nothing" in response.json()["detail"]


def test_unknown_partition_is_404_naming_it(reg, serve):
    url, _ = serve()
    pid, series = a_series(reg)
    history = _rows(reg, pid, series)
    response = post(url, [{"store_id": "new", "product_id": "new", "partition": "mars.tiny.fast",
                           **history}])  # fmt: skip
    assert response.status_code == 404
    assert "'mars.tiny.fast'" in response.json()["detail"]


def test_partition_that_does_not_match_the_series_is_422(reg, serve):
    url, _ = serve()
    pid, series = a_series(reg)
    other = [p for p in reg.parts if p != pid][0]
    response = post(url, [{**series, "partition": other}])
    assert response.status_code == 422
    assert pid in response.json()["detail"] and other in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"series": [], "weeks": 4}, "series"),
        ({"series": [{"store_id": "1"}], "weeks": 4}, "product_id"),
        ({"series": [{"store_id": "1", "product_id": "2", "colour": 1}]}, "colour"),
        ({"series": [{"store_id": "1", "product_id": "2"}], "weeks": 0}, "weeks"),
        ({"series": [{"store_id": "1", "product_id": "2"}], "alias": "a b"}, "alias"),
    ],
)
def test_bad_payload_is_422_naming_the_field(serve, body, where):
    url, _ = serve()
    response = requests.post(f"{url}/v1/forecast", json=body, timeout=5)
    assert response.status_code == 422
    assert where in str(response.json()["detail"])


def test_not_json_is_422(serve):
    url, _ = serve()
    response = requests.post(
        f"{url}/v1/forecast", data=b"{not json", headers={"content-type": "application/json"},
        timeout=5,
    )  # fmt: skip
    assert response.status_code == 422


def test_more_weeks_than_the_horizon_is_422(reg, serve):
    url, _ = serve()
    response = post(url, [a_series(reg)[1]], weeks=5)
    assert response.status_code == 422 and "horizon" in response.json()["detail"]


def test_request_size_limits(reg, serve):
    url, _ = serve(max_series=2, max_body_kb=1)
    series = [a_series(reg, pid)[1] for pid in list(reg.parts)[:3]]
    response = post(url, series)
    assert response.status_code == 422 and "serving.max_series" in response.json()["detail"]
    big = [{"store_id": "x" * 150, "product_id": "y" * 150}] * 4
    response = post(url, big)
    assert response.status_code == 413 and "max_body_kb" in response.json()["detail"]

    def chunks():  # no Content-Length: the streamed body is counted
        yield b'{"series": [' + b" " * 2000 + b"]}"

    response = requests.post(f"{url}/v1/forecast", data=chunks(), timeout=5,
                             headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413


def _rows(reg, pid, series, drop_weeks=0):
    frame = reg.parts[pid]
    frame = frame[
        (frame["store_id"] == series["store_id"]) & (frame["product_id"] == series["product_id"])
    ]
    covariates = [c for c in COVARIATES if c in frame.columns]
    known = frame[frame["units"].notna()]
    if drop_weeks:
        known = known.iloc[:-drop_weeks]

    def rows(f, units):
        cols = ["week", *(["units"] if units else []), *covariates]
        out = f[cols].assign(week=f["week"].dt.strftime("%F"))
        # a value the data does not have (weather of future weeks) is left out, as a client would
        return [{k: v for k, v in r.items() if pd.notna(v)} for r in out.to_dict("records")]

    return {"history": rows(known, True), "future": rows(frame[frame["units"].isna()], False)}


def test_a_request_may_carry_its_own_history_and_covariates(reg, serve):
    url, _ = serve()
    pid, series = a_series(reg)
    own = {"store_id": "new-store", "product_id": series["product_id"], "partition": pid,
           **_rows(reg, pid, series)}  # fmt: skip
    response = post(url, [own])
    assert response.status_code == 200, response.text
    (answer,) = response.json()["forecasts"]
    assert answer["source"] == "request" and answer["partition"] == pid
    assert len(answer["forecasts"]) == 4
    # a known series with history overriding the snapshot's last weeks: forecasts change
    plain = post(url, [series]).json()["forecasts"][0]["forecasts"]
    history = [{**r, "units": r["units"] + 50} for r in _rows(reg, pid, series)["history"]]
    bumped = post(url, [{**series, "history": history}])
    assert bumped.status_code == 200, bumped.text
    assert bumped.json()["forecasts"][0]["source"] == "request"
    assert [w["week"] for w in bumped.json()["forecasts"][0]["forecasts"]] == [
        w["week"] for w in plain
    ]


def test_own_rows_with_a_covariate_missing_are_422_naming_it(reg, serve):
    url, _ = serve()
    pid, series = a_series(reg)
    rows = _rows(reg, pid, series)
    rows["future"] = [{k: v for k, v in r.items() if k != "events"} for r in rows["future"]]
    response = post(url, [{"store_id": "new", "product_id": "new", "partition": pid, **rows}])
    assert response.status_code == 422
    assert "events" in response.json()["detail"]


def test_metrics_are_prometheus_text(reg, serve):
    url, _ = serve()
    assert post(url, [a_series(reg)[1]]).status_code == 200
    assert post(url, [a_series(reg)[1]]).status_code == 200
    response = requests.get(f"{url}/metrics", timeout=5)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for line in (
        'manymodels_serve_requests_total{route="/v1/forecast",status="200"} 2.0',
        "manymodels_serve_cache_hits_total 1.0",
        'manymodels_serve_cache_misses_total{reason="cold"} 1.0',
        "manymodels_serve_models_loaded 1.0",
        'manymodels_serve_series_forecast_total{answer="baseline_champion"} 2.0',
        "manymodels_serve_model_load_seconds_count 1",
        'manymodels_serve_request_seconds_bucket{le="+Inf",route="/v1/forecast"} 2',
        "# TYPE manymodels_serve_request_seconds histogram",
    ):
        assert line in text, line
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert all(len(ln.rsplit(" ", 1)) == 2 for ln in samples)
    assert pd.notna(float(samples[0].rsplit(" ", 1)[1]))

"""Series lifecycle over real HTTP, as batch scoring applies it: a new series is answered by the
baseline packed in its ensemble, a product whose class changed by the partition it was trained
in; the answer says which model kind answered and equals ``predict_future`` on the same rows."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import requests

from manymodels import registry
from manymodels.data.partition import split_partitions
from manymodels.features import COVARIATES
from manymodels.scoring import NEW_SERIES_KIND, predict_future, route_class_changes
from manymodels.serve.snapshot import Snapshot, write_snapshot

MIN_HISTORY = 26


def post(url, series, weeks=4, alias="lifecycle"):
    body = {"series": series, "weeks": weeks, "alias": alias}
    response = requests.post(f"{url}/v1/forecast", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["forecasts"]


def ensemble(reg, frame, pid):
    """An "ensemble" (a baseline fitted on twice the units) with the real baseline inside."""
    return replace(reg.fit(frame, pid, scale=2.0), kind="ensemble", fallback=reg.fit(frame, pid))


def keys_of(frame):
    return frame[["store_id", "product_id"]].astype(str).drop_duplicates().to_dict("records")


def batch_rows(expected, store_id, product_id):
    mine = expected[
        (expected["store_id"].astype(str) == store_id)
        & (expected["product_id"].astype(str) == product_id)
    ]
    return mine.sort_values("week")


def rows_of(frame, store_id, product_id):
    """A series' conditioned rows as the request's history and future."""
    mine = frame[
        (frame["store_id"].astype(str) == store_id)
        & (frame["product_id"].astype(str) == product_id)
    ].sort_values("week")
    covariates = [c for c in COVARIATES if c in mine]
    rows = []
    for r in mine.itertuples(index=False):
        values = {c: getattr(r, c) for c in covariates}
        row = {
            "week": f"{r.week:%F}",
            **{c: None if pd.isna(v) else float(v) for c, v in values.items()},
        }
        if pd.notna(r.units):
            row["units"] = float(r.units)
        rows.append(row)
    return [r for r in rows if "units" in r], [r for r in rows if "units" not in r]


@pytest.fixture(scope="module")
def young(reg):
    """One partition whose first series first sold 5 weeks before the end, with an ensemble
    (baseline inside) aliased ``lifecycle``, and its batch forecast."""
    pid = sorted(reg.parts)[0]
    frame = reg.parts[pid].copy()
    first = keys_of(frame)[0]
    mine = (frame["store_id"].astype(str) == first["store_id"]) & (
        frame["product_id"].astype(str) == first["product_id"]
    )
    last = frame.loc[frame["units"].notna(), "week"].max()
    frame.loc[mine & (frame["week"] <= last - pd.Timedelta(weeks=5)), "units"] = 0.0
    packed = ensemble(reg, frame, pid)
    reg.publish(packed, frame, "lifecycle")
    expected = predict_future(frame, packed, MIN_HISTORY)
    return pid, frame, first, expected


def test_a_new_series_is_answered_by_the_packed_baseline_like_batch_scoring(reg, serve, young):
    pid, frame, new, expected = young
    snapshot = write_snapshot(
        {pid: frame}, reg.root / "young" / "snapshot.parquet", history_weeks=8,
        min_history_weeks=MIN_HISTORY, keys=reg.settings.partition.keys,
    )  # fmt: skip
    assert Snapshot(snapshot).min_history_weeks == MIN_HISTORY
    url, _ = serve(snapshot=str(snapshot))
    assert (batch_rows(expected, **new)["model_kind"] == NEW_SERIES_KIND).all()
    history, future = rows_of(frame, **new)
    answers = post(url, [*keys_of(frame), {**new, "history": history, "future": future}])
    kinds = {}
    for answer in answers:
        want = batch_rows(expected, answer["store_id"], answer["product_id"])
        got = [w["prediction"] for w in answer["forecasts"]]
        assert got == pytest.approx(want["prediction"].tolist(), rel=1e-9), answer
        assert [w["week"] for w in answer["forecasts"]] == want["week"].dt.strftime("%F").tolist()
        assert answer["model"]["kind"] == want["model_kind"].iloc[0]
        assert answer["model"]["fallback"] is (want["model_kind"].iloc[0] == NEW_SERIES_KIND)
        kinds[(answer["store_id"], answer["product_id"], answer["source"])] = answer["model"]
    # the new series, from keys and from its own rows; the others (8 weeks of snapshot history
    # but sold for years: not new, as batch scoring judges them on the whole history)
    assert kinds[(new["store_id"], new["product_id"], "snapshot")]["fallback"]
    assert kinds[(new["store_id"], new["product_id"], "request")]["kind"] == NEW_SERIES_KIND
    assert sum(m["kind"] == "ensemble" for m in kinds.values()) == len(kinds) - 2
    # /metrics counts what answered: the two answers for the new series were fallbacks
    text = requests.get(f"{url}/metrics", timeout=5).text
    assert 'manymodels_serve_series_forecast_total{answer="new_series_baseline"} 2.0' in text
    assert f'manymodels_serve_series_forecast_total{{answer="model"}} {len(kinds) - 2}.0' in text


def test_a_series_the_snapshot_lacks_with_a_short_history_is_new(reg, serve, young):
    pid, frame, _, _ = young
    other = keys_of(frame)[1]
    history, future = rows_of(frame, **other)
    series = {
        "store_id": "a-new-store", "product_id": other["product_id"], "partition": pid,
        "history": history[-6:], "future": future,
    }  # fmt: skip
    url, _ = serve(snapshot=str(reg.root / "young" / "snapshot.parquet"))
    (answer,) = post(url, [series])
    assert answer["model"]["kind"] == NEW_SERIES_KIND and answer["model"]["fallback"]
    (long,) = post(url, [{**series, "history": history}])
    assert long["model"]["kind"] == "ensemble" and not long["model"]["fallback"]


def class_change(reg, table):
    """A product of a slow partition whose (region, format) also has a fast partition."""
    keys = reg.settings.partition.keys
    for pid, frame in sorted(reg.parts.items()):
        if pid.endswith(".slow") and pid.removesuffix(".slow") + ".fast" in reg.parts:
            product = str(frame["product_id"].iloc[0])
            return product, pid, pid.removesuffix(".slow") + ".fast", keys
    pytest.skip("the sample has no region x format with both speeds")


def test_a_product_whose_class_changed_is_answered_by_the_partition_it_was_trained_in(
    reg, serve, table
):
    product, now, trained, keys = class_change(reg, table)
    changes = {product: ["fast", "slow"]}
    routed, notes = route_class_changes(table, changes, keys, lambda p: p in reg.parts)
    assert "scored by the fast model" in notes[product]
    parts = split_partitions(routed, keys)
    snapshot = write_snapshot(
        parts, reg.root / "routed" / "snapshot.parquet", min_history_weeks=MIN_HISTORY,
        class_changes=changes, keys=keys,
    )  # fmt: skip
    model = registry.load(reg.store, reg.name(trained), alias="champion")
    expected = predict_future(parts[trained], model, MIN_HISTORY)
    mine = parts[trained][parts[trained]["product_id"].astype(str) == product]
    series = keys_of(mine)
    url, _ = serve(snapshot=str(snapshot))
    history, future = rows_of(mine, **series[0])
    answers = post(
        url,
        [
            *series,
            {**series[0], "partition": now},  # the partition of its class now: sent back
            {
                **series[0],
                "store_id": "elsewhere",
                "partition": now,
                "history": history,
                "future": future,
            },  # not in the snapshot: routed as batch scoring routes it
        ],  # fmt: skip
        alias="champion",
    )
    for answer in answers:
        assert answer["partition"] == trained
        assert answer["model"]["name"] == reg.name(trained)
        assert answer["class_change"] == "trained as fast, now slow: answered by the fast model"
    for answer in answers[: len(series) + 1]:
        want = batch_rows(expected, answer["store_id"], answer["product_id"])
        got = [w["prediction"] for w in answer["forecasts"]]
        assert got == pytest.approx(want["prediction"].tolist(), rel=1e-9)


def test_a_class_change_without_a_model_where_it_was_trained_is_answered_where_it_is_now(
    reg, serve, table
):
    product, now, _, keys = class_change(reg, table)
    changes = {product: ["medium", "slow"]}  # no *.medium partition has a model
    routed, _ = route_class_changes(table, changes, keys, lambda p: p in reg.parts)
    snapshot = write_snapshot(
        split_partitions(routed, keys), reg.root / "unrouted" / "snapshot.parquet",
        class_changes=changes, keys=keys,
    )  # fmt: skip
    url, _ = serve(snapshot=str(snapshot))
    mine = reg.parts[now][reg.parts[now]["product_id"].astype(str) == product]
    history, future = rows_of(mine, **keys_of(mine)[0])
    series = {**keys_of(mine)[0], "store_id": "elsewhere", "partition": now}
    answers = post(
        url,
        [keys_of(mine)[0], {**series, "history": history, "future": future}],
        alias="champion",
    )
    for answer in answers:
        assert answer["partition"] == now
        assert answer["class_change"].startswith(
            "trained as medium, now slow: answered by the slow"
        )
        assert "no model for" in answer["class_change"]


def test_the_default_snapshot_keeps_the_whole_history_the_features_need(reg, tmp_path):
    """Climatology covariates (the mean of the same week in earlier years) and filled lags need
    the whole history: a snapshot cut to fewer weeks gives other features than batch scoring."""
    from manymodels.config import load_settings
    from manymodels.features import build_features, feature_columns
    from manymodels.training import feature_settings

    settings = load_settings("pipelines", "dev")
    assert settings.serving.history_weeks == 0
    pid = sorted(reg.parts)[0]
    frame = reg.parts[pid]
    fs = feature_settings(settings)
    _, numeric = feature_columns(**fs)

    def future(rows):
        built = build_features(rows, **fs)
        out = built[built["units"].isna()].sort_values(["week", "store_id", "product_id"])
        return out[list(numeric)].reset_index(drop=True).astype(float)

    whole = Snapshot(write_snapshot({pid: frame}, tmp_path / "all.parquet", 0)).parts[pid]
    pd.testing.assert_frame_equal(future(whole), future(frame))
    cut = Snapshot(write_snapshot({pid: frame}, tmp_path / "cut.parquet", 20)).parts[pid]
    assert not future(cut).equals(future(frame))

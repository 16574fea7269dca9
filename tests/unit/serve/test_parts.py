"""The pieces without HTTP: snapshot writer/reader, metrics text, cache bounds, the serve step."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from manymodels.config import ConfigError
from manymodels.serve.cache import ModelCache, ModelNotFound, RegistryUnavailable
from manymodels.serve.metrics import Metrics
from manymodels.serve.snapshot import Snapshot, SnapshotError, snapshot_path, write_snapshot
from manymodels.steps import serve as serve_step


def test_snapshot_keeps_the_latest_history_weeks_and_all_future_rows(tmp_path, reg):
    path = write_snapshot(reg.parts, tmp_path / "s" / "snapshot.parquet", history_weeks=10)
    table = pd.read_parquet(path)
    per_series = table[table["units"].notna()].groupby(["store_id", "product_id"]).size()
    assert set(per_series) == {10}
    assert table["units"].isna().sum() == 24 * 4  # every series' 4 future weeks
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["series"] == 24 and manifest["partitions"] == 8
    assert manifest["last_actual_week"] == "2018-02-19"
    snap = Snapshot(path)
    assert snap.series_count == 24 and snap.manifest == manifest
    assert snap.partition_of("missing", "x") is None and snap.series("missing", "x").empty
    assert not list(path.parent.glob(".*tmp"))  # written atomically, nothing left over


def test_snapshot_errors_name_the_file(tmp_path, reg):
    with pytest.raises(ValueError, match="history_weeks"):
        write_snapshot(reg.parts, tmp_path / "x.parquet", history_weeks=-1)
    with pytest.raises(SnapshotError, match="run batch scoring"):
        Snapshot(tmp_path / "none.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(SnapshotError, match="unreadable"):
        Snapshot(bad)
    pd.DataFrame({"week": [1]}).to_parquet(tmp_path / "thin.parquet")
    with pytest.raises(SnapshotError, match="lacks column"):
        Snapshot(tmp_path / "thin.parquet")
    empty = write_snapshot({}, tmp_path / "empty.parquet")
    assert json.loads(empty.with_suffix(".json").read_text())["series"] == 0


def test_snapshot_path_default_and_env_expansion(monkeypatch, reg):
    from dataclasses import replace

    assert snapshot_path(reg.settings) == reg.settings.path("serving", "snapshot.parquet")
    monkeypatch.setenv("MODEL_DIR", "/mnt/models")
    moved = replace(reg.settings, serving=replace(reg.settings.serving, snapshot="$MODEL_DIR/s.pq"))
    assert str(snapshot_path(moved)) == "/mnt/models/s.pq"


def test_metrics_render_escapes_labels_and_counts_histograms():
    m = Metrics("t")
    m.describe("c", "counter", "a counter")
    m.describe("h", "histogram", "a histogram", buckets=(0.1, 1.0))
    m.inc("c", route='a"b\\c')
    m.observe("h", 0.05)
    m.observe("h", 5.0)
    text = m.render()
    assert 't_c{route="a\\"b\\\\c"} 1.0' in text
    assert 't_h_bucket{le="0.1"} 1' in text and 't_h_bucket{le="1.0"} 1' in text
    assert 't_h_bucket{le="+Inf"} 2' in text and "t_h_count 2" in text
    assert m.value("h") == 2 and m.value("c") == 0 and m.value("c", route='a"b\\c') == 1


def _cache(**kw):
    loads = []
    settings = {"max_models": 2, "max_bytes": 100, "ttl_s": 10.0} | kw
    cache = ModelCache(
        lambda name, alias: None if name == "none" else "1",
        lambda name, version: loads.append(name) or name,
        lambda value: 60,
        **settings,
    )
    return cache, loads


def test_cache_bounds_are_checked_and_the_newest_entry_stays():
    with pytest.raises(ValueError, match="max_models"):
        _cache(max_models=0)
    with pytest.raises(ValueError, match="max_bytes"):
        _cache(max_bytes=0)
    cache, loads = _cache(max_bytes=50)  # every entry (60) is above the bound alone
    cache.get("a", "champion")
    cache.get("b", "champion")
    assert [e.name for e in cache.entries()] == ["b"] and cache.nbytes == 60
    with pytest.raises(ModelNotFound):
        cache.get("none", "champion")
    cache.clear()
    assert cache.entries() == [] and loads == ["a", "b"]


def test_cache_load_failure_without_a_cached_version_is_unavailable():
    def broken(name, version):
        raise OSError("artifact store down")

    cache = ModelCache(lambda n, a: "1", broken, len, max_models=1, max_bytes=10, ttl_s=1)
    with pytest.raises(RegistryUnavailable, match="cannot load m@champion"):
        cache.get("m", "champion")


def test_env_overrides_read_the_serving_keys():
    env = {"MANYMODELS_SERVING_MAX_MODELS": "7", "MANYMODELS_SERVING_ALIAS": "challenger",
           "OTHER": "x"}  # fmt: skip
    assert sorted(serve_step.env_overrides(env)) == [
        "serving.alias=challenger", "serving.max_models=7"
    ]  # fmt: skip


def test_serve_step_starts_uvicorn_with_the_settings(monkeypatch, tmp_path, config_dir):
    import uvicorn

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.update(app=app, **kw))
    monkeypatch.setenv("MANYMODELS_SERVING_MAX_MODELS", "3")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    argv = ["--config-dir", str(config_dir), "--local", "--port", "0",
            "--set", f"project.workdir={tmp_path}"]  # fmt: skip
    assert serve_step.main(argv) == 0
    assert started["port"] == 0 and started["host"] == "127.0.0.1"
    service = started["app"].state.service
    assert service.settings.max_models == 3 and service.snapshot is None
    monkeypatch.setenv("MANYMODELS_SERVING_MAX_MODELS", "many")
    assert serve_step.main(argv) == 2  # a bad value is a settings error, exit 2


def test_bad_env_value_is_a_config_error(monkeypatch, config_dir):
    from manymodels.config import load_settings

    with pytest.raises(ConfigError, match="max_models"):
        load_settings(config_dir, "dev", ["serving.max_models=many"])


def test_intervals_are_served_when_the_model_has_them():
    import numpy as np

    from manymodels.serve.lifecycle import forecast_rows
    from manymodels.serve.service import _weeks

    class WithInterval:
        kind = "ensemble"

        def predict_frame(self, frame):
            n = len(frame)
            return pd.DataFrame({"prediction": [5.0] * n, "p10": [3.0] * n, "p90": [8.0] * n})

    class Without(WithInterval):
        def predict_frame(self, frame):
            return pd.DataFrame({"prediction": [5.0] * len(frame)})

    future = pd.DataFrame({"week": pd.to_datetime(["2018-02-26", "2018-03-05"])})
    weeks = _weeks(forecast_rows(WithInterval(), future, np.zeros(2, bool)))
    assert [(w.prediction, w.lower, w.upper) for w in weeks] == [(5.0, 3.0, 8.0)] * 2
    assert str(weeks[1].week) == "2018-03-05"
    weeks = _weeks(forecast_rows(Without(), future, np.zeros(2, bool)))
    assert [(w.lower, w.upper) for w in weeks] == [(None, None)] * 2

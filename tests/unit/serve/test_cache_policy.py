"""The model-loading policy over real HTTP: alias moves within the TTL, LRU bounds by count and
bytes, single-flight loads, registry outages (503 + Retry-After while cached models answer)
and snapshot reloads."""

from __future__ import annotations

import threading
import time

import pandas as pd
import pytest
import requests

from manymodels import registry
from manymodels.serve.snapshot import write_snapshot


def post(url, series, weeks=4, **extra):
    body = {"series": series, "weeks": weeks, **extra}
    return requests.post(f"{url}/v1/forecast", json=body, timeout=30)


def series_of(reg, pid):
    row = reg.parts[pid].iloc[0]
    return {"store_id": str(row["store_id"]), "product_id": str(row["product_id"])}


def metric(url, line_start: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    found = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    return float(found[0].rsplit(" ", 1)[1]) if found else 0.0


def answer(url, reg, pid, alias):
    response = post(url, [series_of(reg, pid)], alias=alias)
    assert response.status_code == 200, response.text
    return response.json()["forecasts"][0]


def test_an_alias_that_moves_is_served_within_the_ttl(reg, serve):
    pid = list(reg.parts)[1]
    first = reg.add(pid, alias="moving")
    second = reg.add(pid, scale=2.0)
    ttl = 2.0
    url, _ = serve(alias_ttl_s=ttl)
    before = answer(url, reg, pid, "moving")
    assert before["model"]["version"] == first
    registry.set_alias(reg.store, reg.name(pid), "moving", second)  # a promotion
    assert answer(url, reg, pid, "moving")["model"]["version"] == first  # within the TTL
    time.sleep(ttl + 0.1)
    after = answer(url, reg, pid, "moving")
    assert after["model"]["version"] == second and after["model"]["alias"] == "moving"
    assert [w["prediction"] for w in after["forecasts"]] == pytest.approx(
        [2 * w["prediction"] for w in before["forecasts"]]
    )
    registry.set_alias(reg.store, reg.name(pid), "moving", first)  # a rollback
    time.sleep(ttl + 0.1)
    assert answer(url, reg, pid, "moving")["model"]["version"] == first
    assert metric(url, 'manymodels_serve_cache_misses_total{reason="alias_moved"}') == 2
    registry.delete_alias(reg.store, reg.name(pid), "moving")
    time.sleep(ttl + 0.1)
    gone = post(url, [series_of(reg, pid)], alias="moving")
    assert gone.status_code == 404 and "alias 'moving'" in gone.json()["detail"]


def test_lru_keeps_at_most_max_models(reg, serve):
    url, service = serve(max_models=2)
    pids = list(reg.parts)[:3]
    for pid in pids:
        answer(url, reg, pid, "champion")
    assert [e.name for e in service.cache.entries()] == [reg.name(p) for p in pids[1:]]
    assert metric(url, "manymodels_serve_cache_evictions_total") == 1
    assert metric(url, "manymodels_serve_models_loaded") == 2
    answer(url, reg, pids[0], "champion")  # evicted: loaded again, and pids[1] goes
    assert metric(url, "manymodels_serve_model_loads_total") == 4
    assert [e.name for e in service.cache.entries()] == [reg.name(p) for p in (pids[2], pids[0])]


def test_lru_keeps_within_the_byte_bound(reg, serve):
    url, service = serve(max_model_mb=0.001)  # ~1 kB: less than one model
    for pid in list(reg.parts)[:3]:
        answer(url, reg, pid, "champion")
    (only,) = service.cache.entries()
    assert only.name == reg.name(list(reg.parts)[2]) and only.nbytes > 1000
    assert metric(url, "manymodels_serve_cache_evictions_total") == 2
    assert metric(url, "manymodels_serve_models_bytes") == only.nbytes


def test_concurrent_first_requests_load_the_model_once(reg, serve):
    url, _ = serve()
    pid = list(reg.parts)[3]
    barrier = threading.Barrier(8)
    results = []

    def client():
        barrier.wait()
        results.append(post(url, [series_of(reg, pid)]))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in results] == [200] * 8
    assert {r.json()["forecasts"][0]["model"]["version"] for r in results} == {reg.versions[pid]}
    assert metric(url, "manymodels_serve_model_loads_total") == 1
    assert metric(url, 'manymodels_serve_cache_misses_total{reason="cold"}') == 1
    assert metric(url, "manymodels_serve_cache_hits_total") == 7


class Switchable:
    """A store whose registry can be taken away: then it points at a port nothing listens on."""

    def __init__(self, store: registry.Store) -> None:
        self.up, self.store = store, store

    def take_down(self) -> None:
        self.store = registry.Store("dev", "http://127.0.0.1:9", "http://127.0.0.1:9")

    def client(self):
        return self.store.client()

    def __getattr__(self, name):  # env, tracking_uri, registry_uri, ...
        return getattr(self.__dict__["store"], name)


def test_registry_unreachable_is_503_while_cached_models_keep_answering(reg, serve):
    switch = Switchable(reg.store)
    url, _ = serve(store=switch, alias_ttl_s=0.2, retry_after_s=7)
    cached, other = list(reg.parts)[4:6]
    assert answer(url, reg, cached, "champion")["model"]["stale"] is False
    switch.take_down()
    try:
        time.sleep(0.3)  # past the TTL: the alias check fails, the cached model answers
        kept = answer(url, reg, cached, "champion")
        assert kept["model"]["version"] == reg.versions[cached] and kept["model"]["stale"]
        refused = post(url, [series_of(reg, other)])
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "7"
        assert reg.name(other) in refused.json()["detail"]
        ready = requests.get(f"{url}/ready", timeout=10)
        assert ready.status_code == 503 and "unreachable" in ready.json()["problems"]["registry"]
        assert metric(url, 'manymodels_serve_registry_errors_total{operation="resolve"}') >= 2
        assert metric(url, "manymodels_serve_stale_series_forecast_total") == 1
    finally:
        switch.store = switch.up
    time.sleep(0.3)
    assert answer(url, reg, cached, "champion")["model"]["stale"] is False  # back


def test_a_newer_snapshot_is_picked_up_without_a_restart(tmp_path, reg, serve):
    path = tmp_path / "snapshot.parquet"
    write_snapshot(reg.parts, path)
    url, _ = serve(snapshot=str(path), snapshot_check_s=0)
    pid = list(reg.parts)[0]
    series = series_of(reg, pid)
    assert post(url, [series]).status_code == 200
    frame = reg.parts[pid]
    without = frame[frame["store_id"] != series["store_id"]]
    time.sleep(0.01)  # a later mtime
    write_snapshot({**reg.parts, pid: pd.DataFrame(without)}, path)
    response = post(url, [series])
    assert response.status_code == 404, response.text
    assert metric(url, "manymodels_serve_snapshot_loads_total") == 2


def test_a_model_loaded_from_an_older_snapshot_is_loaded_again(reg, serve):
    url, service = serve()
    pid = list(reg.parts)[6]
    answer(url, reg, pid, "champion")
    from manymodels.serve.snapshot import Snapshot

    service.snapshot = Snapshot(reg.snapshot)  # a newer one arrived during that load
    assert answer(url, reg, pid, "champion")["model"]["version"] == reg.versions[pid]
    assert metric(url, "manymodels_serve_model_loads_total") == 2

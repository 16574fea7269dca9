"""The stale trap (issue 10): a champion the gate keeps is re-validated, not left to go stale.

A retrained challenger that loses keeps the champion serving and records, on the champion's
version, that it was validated on the newest held-out weeks; scoring's age rule counts from that
validation. A baseline champion is refit on the latest data at every training run instead.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from manymodels import registry
from manymodels.io import write_json
from manymodels.monitoring import staleness
from manymodels.steps import promote, register, score

PID = "north-texas.large.fast"
OLD = (dt.datetime.now(dt.UTC) - dt.timedelta(days=90)).isoformat(timespec="seconds")


@pytest.fixture
def store(settings, monkeypatch):
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MANYMODELS_DEV_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    return registry.resolve_store(settings, local=True)


def _run(store) -> str:
    client = store.client()
    return client.create_run(store.experiment_id("manymodels"), run_name=PID).info.run_id


def _champion(store, settings, kind: str, trained_at: str = OLD):
    name = registry.model_name(settings, PID)
    run = _run(store)
    version = registry.register(
        store, f"runs:/{run}/{kind}", name, {"model_kind": kind, "trained_at": trained_at}
    )
    registry.set_alias(store, name, registry.CHAMPION, version.version)
    return name, version


def _handoff(settings, store, decision: str, champion_mape: float | None) -> str:
    run = _run(store)
    part = {
        "status": "trained", "keys": {"region": "North Texas"}, "metrics": {"ensemble_mape": 0.5},
        "run_id": run, "ensemble_uri": f"runs:/{run}/ensemble",
        "baseline_uri": f"runs:/{run}/baseline", "trained_at": "2026-01-05T00:00:00+00:00",
    }  # fmt: skip
    training = {"parent_run_id": run, "data_version": "d2", "local": True,
                "as_of": "2012-10-29", "partitions": {PID: part}}  # fmt: skip
    verdict = {"decision": decision, "champion_mape": champion_mape}
    write_json(training, settings.path("runs", "training.json"))
    write_json({"parent_run_id": run, "partitions": {PID: verdict}},
               settings.path("reports", "gate.json"))  # fmt: skip
    return run


def test_a_kept_champion_is_tagged_as_validated_on_fresh_data(settings, store, common_args):
    name, version = _champion(store, settings, "ensemble")
    run = _handoff(settings, store, "keep_champion", 0.31)
    assert register.main([*common_args, "--local"]) == 0
    tags = store.client().get_model_version(name, version.version).tags
    assert tags["last_validated_at"] > OLD and tags["last_validated_run_id"] == run
    assert tags["last_validated_mape"] == "0.31" and tags["last_validated_data_version"] == "d2"
    assert tags["last_validated_as_of"] == "2012-10-29"  # the data's clock (its as-of date)
    assert registry.get_alias(store, name, registry.CHALLENGER) is None  # nothing new registered


def test_a_kept_champion_that_could_not_be_scored_is_not_validated(settings, store, common_args):
    name, version = _champion(store, settings, "ensemble")
    _handoff(settings, store, "keep_champion", None)
    assert register.main([*common_args, "--local"]) == 0
    assert "last_validated_at" not in store.client().get_model_version(name, version.version).tags


def test_a_baseline_champion_is_refit_on_the_latest_data(settings, store, common_args):
    name, _ = _champion(store, settings, "baseline")
    run = _handoff(settings, store, "keep_champion", 0.7)
    assert register.main([*common_args, "--local"]) == 0
    challenger = registry.get_alias(store, name, registry.CHALLENGER)
    assert challenger is not None and challenger.tags["model_kind"] == "baseline"
    assert challenger.tags["training_run_id"] == run  # the fresh fit, not the old one


def test_scoring_ages_a_champion_from_its_last_validation(settings, store):
    name, version = _champion(store, settings, "ensemble")
    today = dt.date.today()
    frame = pd.DataFrame({"week": [pd.Timestamp(today)]})
    status, _ = score.plan({PID: frame}, store, settings, today, allow_stale=False)
    assert status[PID]["status"] == "stale: refused"
    fresh = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat(timespec="seconds")
    registry.set_version_tags(store, name, version.version, {"last_validated_at": fresh})
    status, tasks = score.plan({PID: frame}, store, settings, today, allow_stale=False)
    assert status[PID]["status"] == "scored" and PID in tasks
    assert status[PID]["age_days"] == 3 and status[PID]["age_basis"] == "validated"


def test_promote_to_prod_carries_a_new_validation_to_an_unchanged_copy(settings, store):
    dev_name, dev_version = _champion(store, settings, "ensemble")
    prod = registry.resolve_store(settings, "prod", local=True)
    tags = {"source_version": str(dev_version.version), "model_kind": "ensemble",
            "source_env": "dev", "source_run_id": dev_version.run_id or "",
            "trained_at": OLD}  # fmt: skip
    run = prod.client().create_run(prod.experiment_id("manymodels")).info.run_id
    copy = registry.register(prod, f"runs:/{run}/model", dev_name, tags)
    registry.set_alias(prod, dev_name, registry.CHAMPION, copy.version)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    registry.set_version_tags(store, dev_name, dev_version.version, {"last_validated_at": stamp})
    moved = promote.promote_prod(store, prod, "demand", "manymodels")
    assert moved[dev_name]["copied"] is False
    assert (
        prod.client().get_model_version(dev_name, copy.version).tags["last_validated_at"] == stamp
    )


def test_a_new_version_records_the_date_its_data_was_as_of(settings, store, common_args):
    _handoff(settings, store, "promote", None)
    assert register.main([*common_args, "--local"]) == 0
    challenger = registry.get_alias(store, registry.model_name(settings, PID), registry.CHALLENGER)
    assert challenger.tags["trained_as_of"] == "2012-10-29"
    assert challenger.tags["trained_at"] == "2026-01-05T00:00:00+00:00"  # the wall clock


def test_ages_count_on_the_data_clock_where_a_version_records_it(settings, store):
    """A historical export (data.as_of 2012-10-29) trained today and scored as of its own
    date: its champion is 0 days old, not minus fourteen years; the wall-clock tags of older
    versions still count where there is no as-of tag."""
    name, version = _champion(store, settings, "ensemble", trained_at=OLD)
    scoring = dt.date(2012, 11, 5)
    frame = pd.DataFrame({"week": [pd.Timestamp(scoring)]})
    status, _ = score.plan({PID: frame}, store, settings, scoring, allow_stale=False)
    assert status[PID]["age_days"] < -4000  # the wall clock against the data's: meaningless
    registry.set_version_tags(store, name, version.version, {"trained_as_of": "2012-10-29"})
    status, _ = score.plan({PID: frame}, store, settings, scoring, allow_stale=False)
    assert (status[PID]["age_days"], status[PID]["age_basis"]) == (7, "trained")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    registry.set_version_tags(
        store, name, version.version,
        {"last_validated_at": now, "last_validated_as_of": "2012-11-01"},
    )  # fmt: skip
    status, _ = score.plan({PID: frame}, store, settings, scoring, allow_stale=False)
    assert (status[PID]["age_days"], status[PID]["age_basis"]) == (4, "validated")
    rows = staleness.staleness(
        [{"partition": PID, "model": name, "version": "1", "created": now,
          "tags": store.client().get_model_version(name, version.version).tags}],
        scoring, 60, 14,
    )  # fmt: skip
    assert (rows[0]["age_days"], rows[0]["trained_days"], rows[0]["status"]) == (4, 7, "fresh")


def test_the_two_clocks_are_never_mixed():
    """A version trained on the data clock and validated by a register that wrote no as-of
    date: its age counts from its training, not from a wall-clock date against a data one."""
    wall = "2026-12-03T10:00:00+00:00"
    mixed = {"trained_as_of": "2012-10-29", "trained_at": wall, "last_validated_at": wall}
    assert staleness.age_basis(mixed, wall) == ("2012-10-29", "trained")
    both = {**mixed, "last_validated_as_of": "2012-11-26"}
    assert staleness.age_basis(both, wall) == ("2012-11-26", "validated")
    old = {"trained_at": wall, "last_validated_at": wall}  # before the as-of tags
    assert staleness.age_basis(old, wall) == (wall, "validated")


def test_a_training_json_without_as_of_gets_the_data_clock_of_this_run(
    settings, store, common_args
):
    run = _handoff(settings, store, "promote", None)
    path = settings.path("runs", "training.json")
    meta = json.loads(path.read_text())
    meta.pop("as_of")
    path.write_text(json.dumps(meta))
    assert register.main([*common_args, "--local", "--set", "data.as_of=2013-02-04"]) == 0
    challenger = registry.get_alias(store, registry.model_name(settings, PID), registry.CHALLENGER)
    assert challenger.tags["trained_as_of"] == "2013-02-04"
    assert challenger.tags["training_run_id"] == run

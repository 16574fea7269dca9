"""The evaluate step finds every partition's champion in one registry search (no look-up per
partition: at 10,000 partitions that was 10,000 round trips), against a real sqlite registry."""

from __future__ import annotations

from manymodels import registry
from manymodels.cli import run_step
from manymodels.config import load_settings
from manymodels.data.partition import split_partitions
from manymodels.features import build_features, feature_columns
from manymodels.io import read_json, write_json
from manymodels.models import HistoricalAverageBaseline
from manymodels.pyfunc import PackedModel
from manymodels.training import feature_settings


def _champion(store, settings, frame, pid: str, folder) -> tuple[str, str]:
    fs = feature_settings(settings)
    categorical, numeric = feature_columns(**fs)
    columns = ["week", *categorical, *numeric]
    known = build_features(frame, **fs).dropna(subset=["units"])
    packed = PackedModel(
        HistoricalAverageBaseline().fit(known[columns], known["units"]),
        "baseline",
        pid,
        fs,
        columns,
    )
    path = registry.save_pyfunc(packed, folder, known[columns].head(2))
    with registry.pipeline_run(store, settings.mlflow.experiment, "training", {}) as run:
        logged = registry.log_partition(
            store, run.info.run_id, pid, params={}, metrics={}, tags={},
            model_dirs={"baseline": path},
        )  # fmt: skip
    name = registry.model_name(settings, pid)
    version = registry.register(store, logged["baseline_uri"], name, {"model_kind": "baseline"})
    registry.set_alias(store, name, registry.CHAMPION, version.version)
    return str(version.version), run.info.run_id


def test_champions_are_found_in_one_search_not_per_partition(tmp_path, _conditioned, monkeypatch):
    work = tmp_path / "work"
    args = ["--set", f"project.workdir={work}"]
    settings = load_settings("pipelines", "dev", [f"project.workdir={work}"])
    store = registry.resolve_store(settings, local=True)
    (pid, frame), *_ = split_partitions(_conditioned[0], ("store_id",)).items()
    version, run_id = _champion(store, settings, frame, pid, tmp_path / "model")
    failed = {"status": "failed", "error": "boom", "keys": {}}
    training = {"parent_run_id": run_id, "local": True, "data_version": "d"}
    partitions = {pid: failed, "other.partition": failed}
    write_json(training | {"partitions": partitions}, work / "runs" / "training.json")

    def no_lookup(*_args, **_kwargs):
        raise AssertionError("a champion looked up one partition at a time")

    monkeypatch.setattr(registry, "get_alias", no_lookup)
    assert run_step("evaluate", args) == 0
    gate = read_json(work / "reports" / "gate.json")["partitions"]
    assert str(gate[pid]["champion_version"]) == version
    assert gate["other.partition"]["champion_version"] is None
    assert {g["decision"] for g in gate.values()} == {"training_failed"}

"""Step ``score``: nothing lost on re-scoring, clear warehouse errors, no secret in any output.

The champions are real MLflow pyfunc models (the historical-average baseline) registered in the
embedded sqlite store, so the step runs exactly as in production, only smaller.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from manymodels import registry, training
from manymodels.config import load_settings
from manymodels.data.partition import partition_id, split_partitions
from manymodels.features import build_features, feature_columns
from manymodels.models.baseline import HistoricalAverageBaseline
from manymodels.pyfunc import PackedModel
from manymodels.scoring import predict_future
from manymodels.scoring_blocks import BlockJob, Member, forecasts_path, score_block
from manymodels.steps import condition, score
from manymodels.steps.condition import read_conditioned

pytestmark = pytest.mark.usefixtures("in_tmp")

SECRET = "hunter2-s3cret"
TOKEN = "tok-9f8e7d6c"


class ExplodesOnScoring:
    """An estimator that predicts the two-row MLflow example but fails on real data."""

    def predict(self, X):
        if len(X) > 2:
            raise RuntimeError("model exploded")
        return [1.0] * len(X)


def keep_partitions(conditioned: Path, pids: list[str], keys: tuple[str, ...]) -> None:
    """Cut the conditioned table in ``conditioned`` down to the partitions ``pids``."""
    table, _ = read_conditioned(conditioned)
    ids = pd.Series([partition_id(k) for k in zip(*(table[c] for c in keys), strict=True)])
    table[ids.isin(pids).to_numpy()].to_parquet(conditioned / condition.TABLE, index=False)


@pytest.fixture(scope="module")
def base(tmp_path_factory, sample_raw, config_dir) -> tuple[Path, dict[str, str]]:
    """A workdir with the conditioned sample of one region (its four partitions: both store
    formats, fast and slow) and a baseline champion per partition.

    Built once per module (registering is the slow part); each test works on a copy. One region,
    not both: every test scores every partition, each a champion loaded from the registry.
    """
    work = tmp_path_factory.mktemp("score") / "work"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        args = ["--config-dir", str(config_dir), "--set", f"project.workdir={work}"]
        out = work / "conditioned"
        assert condition.main(["--raw", str(sample_raw), "--out", str(out), *args]) == 0
        settings = load_settings(config_dir, "dev", [f"project.workdir={work}"])
        keys = tuple(settings.partition.keys)
        pids = sorted(split_partitions(read_conditioned(out)[0], keys))
        region = pids[0].split(".")[0]
        keep_partitions(out, [p for p in pids if p.startswith(f"{region}.")], keys)
        table, _ = read_conditioned(out)
        assert len(split_partitions(table, keys)) == 4
        versions = publish(settings, split_partitions(table, keys), None)
    return work, versions


@pytest.fixture
def conditioned(base, workdir) -> Path:
    return Path(shutil.copytree(base[0] / "conditioned", workdir / "conditioned"))


@pytest.fixture
def parts(base, settings) -> dict[str, pd.DataFrame]:
    table, _ = read_conditioned(base[0] / "conditioned")
    return split_partitions(table, settings.partition.keys)


def publish(settings, parts, pids, estimator=None, kind="baseline", **extra) -> dict[str, str]:
    """Register a champion per partition in ``pids`` (None: all), the baseline or ``estimator``
    (``extra``: more PackedModel fields, e.g. the ``fallback`` baseline of an ensemble)."""
    store = registry.resolve_store(settings, local=True)
    fs = training.feature_settings(settings)
    categorical, numeric = feature_columns(**fs)
    columns = [training.TIME_COL, *categorical, *numeric]
    versions = {}
    tags = {"trained_at": dt.datetime.now(dt.UTC).isoformat(), "model_kind": "baseline"}
    with registry.pipeline_run(store, settings.mlflow.experiment, "train", {}) as run:
        for pid in parts if pids is None else pids:
            features = build_features(parts[pid], **fs)
            known = features[features["units"].notna()]
            model = estimator or HistoricalAverageBaseline().fit(known[columns], known["units"])
            packed = PackedModel(model, kind, pid, fs, columns, **extra)
            folder = registry.save_pyfunc(
                packed, settings.path("tmp-models", pid), known[columns].head(2)
            )
            uris = registry.log_partition(
                store, run.info.run_id, pid, params={}, metrics={}, tags={},
                model_dirs={"baseline": folder},
            )  # fmt: skip
            name = registry.model_name(settings, pid)
            version = registry.register(store, uris["baseline_uri"], name, tags)
            registry.set_alias(store, name, registry.CHAMPION, version.version)
            versions[pid] = str(version.version)
    shutil.rmtree(settings.path("tmp-models"))
    return versions


@pytest.fixture
def published(base, workdir) -> dict[str, str]:
    """The module's champions, in this test's copy of the workdir."""
    shutil.copytree(base[0], workdir)
    return base[1]


@pytest.fixture
def ws(common_args, as_of, settings, parts, workdir) -> SimpleNamespace:
    """The test's workspace: ``run(*args)`` runs the step; its outputs; ``publish(...)``."""

    def run(*extra: str, local: bool = True) -> int:
        args = [*common_args, "--as-of", str(as_of), "--workers", "1", *extra]
        return score.main([*args, "--local"] if local else args)

    def sql_rows() -> pd.DataFrame:
        with sqlite3.connect(workdir / "predictions.db") as conn:
            return pd.read_sql("SELECT * FROM predictions", conn)

    return SimpleNamespace(
        run=run,
        work=workdir,
        out=workdir / "predictions" / f"scoring_date={as_of}" / "predictions.parquet",
        report=(workdir / "reports" / "scoring.md").read_text,
        sql_rows=sql_rows,
        publish=lambda pids, estimator=None, **kw: publish(settings, parts, pids, estimator, **kw),
        settings=settings,
    )


def test_scoring_writes_every_partition_to_parquet_and_sql(published, ws):
    assert ws.run() == 0
    predictions = pd.read_parquet(ws.out)
    assert set(predictions["partition"]) == set(published)
    assert len(ws.sql_rows()) == len(predictions)
    assert "SQL: table `predictions`" in ws.report()


def test_rescoring_replaces_only_the_partitions_this_run_scored(published, ws, caplog):
    assert ws.run() == 0
    before = pd.read_parquet(ws.out)
    broken = sorted(published)[0]
    ws.publish([broken], ExplodesOnScoring())
    assert ws.run() == 1
    after = pd.read_parquet(ws.out)
    # the failing partition keeps the predictions of its previous champion, whole
    kept = after[after["partition"] == broken].reset_index(drop=True)
    old = before[before["partition"] == broken].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, old)
    assert set(after["partition"]) == set(published)
    assert len(after) == len(before)
    # the SQL table holds the same rows: replaced per partition, not per date
    rows = ws.sql_rows()
    assert len(rows) == len(after)
    assert set(rows.loc[rows["partition"] == broken, "model_version"]) == {published[broken]}
    report = ws.report()
    assert f"kept {len(old)} earlier predictions" in report
    assert "model exploded" in report
    assert f"kept {len(old)} earlier predictions" in caplog.text


def test_a_run_that_scores_nothing_never_overwrites_the_outputs(published, ws, caplog):
    assert ws.run() == 0
    parquet, rows = ws.out.read_bytes(), ws.sql_rows()
    ws.publish(None, ExplodesOnScoring())
    assert ws.run() == 1
    assert ws.out.read_bytes() == parquet
    pd.testing.assert_frame_equal(ws.sql_rows(), rows)
    assert "no partition scored: the predictions" in caplog.text


def test_a_first_run_that_scores_nothing_writes_no_empty_file(conditioned, ws):
    assert ws.run() == 1  # no champions at all
    assert not (ws.work / "predictions").exists()
    assert "no model" in ws.report()


def test_an_unreadable_earlier_output_stops_the_run_and_is_left_alone(published, ws, caplog):
    ws.out.parent.mkdir(parents=True)
    ws.out.write_text("not parquet")
    assert ws.run() == 2
    assert ws.out.read_text() == "not parquet"
    assert "cannot read the earlier predictions" in caplog.text


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        (f"postgresql+psycopg://scorer:{SECRET}@127.0.0.1:1/db", "check that the database"),
        (f"mysql+pymysql://scorer:{SECRET}@127.0.0.1:1/db", "pip install pymysql"),
        (f"nosuchdb://scorer:{SECRET}@127.0.0.1/db", "is not a SQLAlchemy dialect"),
        ("warehouse.example.com/db", "is not a valid SQLAlchemy URL"),
    ],
)
def test_an_unusable_warehouse_url_is_a_clear_error_and_loses_no_predictions(
    published, ws, caplog, url, hint
):
    if "psycopg" in url:
        pytest.importorskip("psycopg")
    caplog.set_level(logging.INFO)
    assert ws.run("--set", f"scoring.sql_url={url}") == 1
    assert len(pd.read_parquet(ws.out)) > 0  # the parquet output is written all the same
    assert "Traceback" not in caplog.text
    assert hint in caplog.text
    assert SECRET not in caplog.text
    if SECRET in url:
        assert "scorer:***@127.0.0.1" in caplog.text
    report = ws.report()
    assert "not written" in report and SECRET not in report


def written_files(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_no_secret_in_any_file_or_log_the_step_writes(published, ws, monkeypatch, caplog):
    pytest.importorskip("psycopg")
    caplog.set_level(logging.DEBUG)
    store = registry.resolve_store(ws.settings, local=True)
    # the same store, reached through a URI that carries a token (SQLite ignores it)
    db = store.tracking_uri.removeprefix("sqlite:///")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///file:{db}?uri=true&token={TOKEN}")
    url = f"postgresql+psycopg://scorer:{SECRET}@127.0.0.1:1/warehouse?password={SECRET}"
    root = ws.work.parent  # the test's folder: the workdir and the folder it runs from
    before = written_files(root)
    assert ws.run("--set", f"scoring.sql_url={url}", local=False) == 1
    wrote = [p for p, t in written_files(root).items() if before.get(p) != t]
    assert not any(TOKEN in str(p) or SECRET in str(p) for p in wrote)
    assert ws.out in wrote
    assert ws.work / "reports" / "scoring.md" in wrote
    assert "token=***" in ws.report()
    for path in wrote:
        data = path.read_bytes()
        assert SECRET.encode() not in data, path
        assert TOKEN.encode() not in data, path
    assert SECRET not in caplog.text
    assert TOKEN not in caplog.text


class Fixed:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return [self.value] * len(X)


def test_new_series_are_served_by_the_packed_baseline_and_unseen_series_reported(
    published, ws, parts, caplog
):
    pid = sorted(parts)[0]
    frame = parts[pid]
    pairs = sorted(set(frame["store_id"].astype(str) + "/" + frame["product_id"].astype(str)))
    ws.publish([pid], Fixed(2.5), kind="ensemble", series=pairs[1:])
    # every series is "new" with a history requirement longer than the data
    store = registry.resolve_store(ws.settings, local=True)
    model = registry.load(store, registry.model_name(ws.settings, pid), alias=registry.CHAMPION)
    assert model.fallback is None  # an old-style ensemble: no baseline inside
    with caplog.at_level(logging.WARNING):
        assert ws.run("--set", "data.min_history_weeks=1000") == 0
    got = pd.read_parquet(ws.out)
    mine = got[got["partition"] == pid]
    assert (mine["model_kind"] == "ensemble (new series: no baseline in this model)").all()
    report = ws.report()
    assert f"never saw 1 series: {pairs[0]}" in report
    assert f"never saw 1 series: {pairs[0]}" in caplog.text
    assert "unknown (model saved without its series)" in report  # the baseline champions
    # an ensemble with its baseline inside forecasts the new series with the baseline
    fs = model.features
    ws.publish([pid], Fixed(2.5), kind="ensemble", series=pairs,
               fallback=PackedModel(Fixed(7.0), "baseline", pid, fs, model.columns))  # fmt: skip
    assert ws.run("--set", "data.min_history_weeks=1000") == 0
    mine = pd.read_parquet(ws.out).query("partition == @pid")
    assert (mine["model_kind"] == "baseline (new series)").all()
    assert (mine["prediction"] == 7.0).all()
    assert ws.sql_rows().query("partition == @pid")["model_kind"].eq("baseline (new series)").all()


def test_a_product_whose_class_changed_is_scored_by_the_model_it_was_trained_in(
    published, ws, parts
):
    conditioned = ws.work / "conditioned"
    table, manifest = read_conditioned(conditioned)
    slow = table[table["speed"].astype(str) == "slow"]
    # a slow product all of whose (region, format) also have a fast partition with a champion
    ok = []
    for p, rows in slow.groupby("product_id", observed=True):
        places = rows[["region", "store_format"]].drop_duplicates().itertuples(index=False)
        if all(partition_id((r, f, "fast")) in parts for r, f in places):
            ok.append(p)
    product = ok[0]
    manifest["against_training"] = {
        "compared": True, "unseen_products": [], "class_changes": {str(product): ["fast", "slow"]}
    }  # fmt: skip
    (conditioned / "manifest.json").write_text(json.dumps(manifest))
    assert ws.run() == 0
    got = pd.read_parquet(ws.out)
    assert set(got.loc[got["product_id"] == product, "speed"].astype(str)) == {"fast"}
    assert all(p.endswith(".fast") for p in got.loc[got["product_id"] == product, "partition"])
    assert f"product {product}: trained as fast, now slow: scored by the fast model" in ws.report()


# --- scoring by blocks (issue 12): the same forecasts, failures per partition ---


def _forecasts(path: Path) -> pd.DataFrame:
    got = pd.read_parquet(path).drop(columns=["scored_at"])
    got = got.astype({c: str for c in ("region", "store_format", "speed", "store_id")})
    return got.sort_values(["partition", "store_id", "product_id", "week"], ignore_index=True)


def test_blocks_give_the_forecasts_and_snapshot_of_scoring_each_partition_whole(
    published, ws, parts, as_of
):
    assert ws.run() == 0
    got = _forecasts(ws.out)
    # what scoring each partition of the whole table with its champion gives (the old path)
    store = registry.resolve_store(ws.settings, local=True)
    for pid, frame in parts.items():
        packed = registry.load(store, registry.model_name(ws.settings, pid), alias="champion")
        want = predict_future(frame, packed, ws.settings.data.min_history_weeks)
        mine = got[got["partition"] == pid]
        assert len(mine) == len(want)
        assert mine["prediction"].to_numpy() == pytest.approx(
            want.sort_values(["store_id", "product_id", "week"])["prediction"].to_numpy()
        )
    assert set(got["scoring_date"]) == {str(as_of)}
    snapshot = pd.read_parquet(ws.work / "serving" / "snapshot.parquet")
    assert len(snapshot) == sum(len(f) for f in parts.values())
    assert set(snapshot["partition"]) == set(parts)
    manifest = json.loads((ws.work / "serving" / "snapshot.json").read_text())
    assert manifest["partitions"] == len(parts) and manifest["rows"] == len(snapshot)
    assert manifest["series"] == snapshot.groupby(["store_id", "product_id"]).ngroups
    last = snapshot.loc[snapshot["units"].notna(), "week"].max()
    assert manifest["last_actual_week"] == f"{last:%F}"
    # many small blocks in worker processes: the same forecasts
    assert ws.run("--set", "scoring.block_size=2", "--workers", "2") == 0
    pd.testing.assert_frame_equal(_forecasts(ws.out), got)


def test_a_champion_whose_artifacts_are_gone_fails_alone_and_keeps_its_predictions(
    published, ws, tmp_path
):
    assert ws.run() == 0
    before = pd.read_parquet(ws.out)
    store = registry.resolve_store(ws.settings, local=True)
    broken = sorted(published)[1]
    name = registry.model_name(ws.settings, broken)
    uri = store.client().get_model_version_download_uri(name, published[broken])
    # the copied store's artifact URIs are absolute: they point into the module's shared `base`
    # folder, which the tests after this one read. Move the folder away, and back afterwards.
    artifacts = Path(uri.removeprefix("file://"))
    aside = tmp_path / "aside"
    shutil.move(artifacts, aside)
    try:
        status = ws.run()
    finally:
        shutil.move(aside, artifacts)
    assert status == 1
    after = pd.read_parquet(ws.out)
    assert len(after) == len(before)
    kept = after[after["partition"] == broken].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        kept, before[before["partition"] == broken].reset_index(drop=True)
    )
    report = ws.report()
    line = next(r for r in report.splitlines() if r.startswith(f"| {broken} "))
    assert "failed:" in line and f"{name} v{published[broken]}" in line
    assert "kept" in line
    others = [r for r in report.splitlines() if r.startswith("| ") and "| scored |" in r]
    assert len(others) == len(published) - 1


def test_a_block_member_without_rows_fails_alone(published, ws, parts, tmp_path):
    pid = sorted(parts)[0]
    rows = tmp_path / "block.parquet"
    parts[pid].to_parquet(rows, index=False)
    store = registry.resolve_store(ws.settings, local=True)
    name = registry.model_name(ws.settings, pid)
    job = BlockJob(
        str(rows), (Member(pid, name, published[pid]), Member("nowhere.x.y", "m", "1")), store,
        tuple(ws.settings.partition.keys), "2026-01-05", "now",
    )  # fmt: skip
    out = score_block(job)
    assert out[pid]["rows"] > 0
    assert isinstance(out["nowhere.x.y"], ValueError)
    assert "no rows to score" in str(out["nowhere.x.y"])
    assert set(pd.read_parquet(forecasts_path(rows))["partition"]) == {pid}


class KillsItsWorker:
    """Predicts the two-row MLflow example; on real data it kills its process, as the
    out-of-memory killer would."""

    def predict(self, X):
        if len(X) > 2:
            os._exit(137)
        return [1.0] * len(X)


def test_a_partition_that_kills_its_worker_fails_alone_not_its_block(published, ws):
    pids = sorted(published)[:3]
    # three partitions in two blocks: each pool spawns workers (MLflow imports: seconds each),
    # and fewer blocks need fewer pools
    keep_partitions(ws.work / "conditioned", pids, tuple(ws.settings.partition.keys))
    assert ws.run() == 0
    before = pd.read_parquet(ws.out)
    assert set(before["partition"]) == set(pids)
    killer = pids[0]
    ws.publish([killer], KillsItsWorker())
    # one block of two: its worker dies, then each partition is scored again on its own
    assert ws.run("--set", "scoring.block_size=2", "--workers", "2") == 1
    after = pd.read_parquet(ws.out)
    assert len(after) == len(before)
    report = ws.report()
    line = next(r for r in report.splitlines() if r.startswith(f"| {killer} "))
    assert "died" in line and "kept" in line
    for other in pids[1:]:  # the neighbour in its block, the partition in the other block
        line = next(r for r in report.splitlines() if r.startswith(f"| {other} "))
        assert "| scored |" in line


def test_champions_saved_without_a_compact_form_score_the_same(published, ws, tmp_path):
    """Models saved before compact forms existed (main's): compiled at load, same forecasts;
    a model that has none (an estimator of its own) is scored with the model itself."""
    from manymodels.scoring_compact import COMPACT_FILE

    assert ws.run() == 0
    with_compact = _forecasts(ws.out)
    store = registry.resolve_store(ws.settings, local=True)
    moved = []
    for pid, version in published.items():
        uri = store.client().get_model_version_download_uri(
            registry.model_name(ws.settings, pid), version
        )
        path = Path(uri.removeprefix("file://")) / "artifacts" / COMPACT_FILE
        assert path.is_file()  # written when the model was saved
        aside = tmp_path / f"{pid}.pkl"
        shutil.move(path, aside)  # the shared store: put back afterwards
        moved.append((aside, path))
    try:
        assert ws.run() == 0
    finally:
        for aside, path in moved:
            shutil.move(aside, path)
    pd.testing.assert_frame_equal(_forecasts(ws.out), with_compact)
    model = registry.load_scoring_form(store, registry.model_name(ws.settings, pid), version)
    assert type(model).__name__ == "CompactModel"


def drop_future_rows(conditioned: Path, pid: str, keys: tuple[str, ...]) -> int:
    """Take partition ``pid``'s future rows out, as conditioning does when each of its series
    is discontinued; the number of rows it had."""
    table, _ = read_conditioned(conditioned)
    ids = pd.Series([partition_id(k) for k in zip(*(table[c] for c in keys), strict=True)])
    future = (ids == pid).to_numpy() & table["units"].isna().to_numpy()
    table[~future].to_parquet(conditioned / condition.TABLE, index=False)
    return int(future.sum())


def test_a_partition_whose_series_are_all_discontinued_has_nothing_to_forecast(
    published, ws, caplog
):
    """A real export's region whose every product stopped selling: reported, not a failure."""
    pid = sorted(published)[0]
    keys = tuple(ws.settings.partition.keys)
    assert drop_future_rows(ws.work / "conditioned", pid, keys) > 0
    assert ws.run() == 0
    predictions = pd.read_parquet(ws.out)
    assert set(predictions["partition"]) == set(published) - {pid}
    (line,) = [r for r in ws.report().splitlines() if r.startswith(f"| {pid} |")]
    assert "nothing to forecast" in line and "discontinued" in line
    assert "failed" not in line
    assert f"score: {pid}: nothing to forecast" in caplog.text


def test_a_table_without_any_future_rows_is_still_an_error(published, ws):
    """``data.horizon_weeks: 0`` (or a table cut short) is no partition's lifecycle: exit 1."""
    keys = tuple(ws.settings.partition.keys)
    for pid in published:
        drop_future_rows(ws.work / "conditioned", pid, keys)
    manifest = ws.work / "conditioned" / "manifest.json"
    meta = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**meta, "future_rows": 0}))
    assert ws.run() == 1
    assert "failed: the conditioned table has no future rows" in ws.report()

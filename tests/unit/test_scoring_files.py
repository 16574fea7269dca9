"""Batch scoring's streamed file work: scan, split into blocks, merge parts atomically."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from manymodels import scoring_files
from manymodels.scoring import write_sql_parts
from manymodels.scoring_files import merge_parts, partition_ids, read_part, scan, split

KEYS = ("region", "store_format", "speed")


def table(rows_per_partition: int = 5) -> pd.DataFrame:
    frames = []
    for region in ("North Texas", "Gulf"):
        for speed in ("fast", "slow"):
            frames.append(
                pd.DataFrame({
                    "region": region, "store_format": "large", "speed": speed,
                    "product_id": [f"{speed}-{i % 2}" for i in range(rows_per_partition)],
                    "units": range(rows_per_partition),
                })
            )  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    return frame.astype({k: "category" for k in KEYS})


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setattr(scoring_files, "BATCH_ROWS", 3)  # many batches, rows of a partition split
    path = tmp_path / "demand.parquet"
    table().to_parquet(path, index=False)
    return path


def test_scan_reads_the_distinct_keys_and_products_batch_by_batch(source):
    combos = scan(source, KEYS)
    assert len(combos) == 8  # 4 partitions x 2 products
    assert set(partition_ids(combos, KEYS)) == {
        "north-texas.large.fast", "north-texas.large.slow", "gulf.large.fast", "gulf.large.slow",
    }  # fmt: skip


def test_scan_names_a_missing_or_empty_key_column(tmp_path, source):
    with pytest.raises(ValueError, match=r"partition keys \['store_type'\] are not columns"):
        scan(source, ("region", "store_type"))
    bad = table().astype({"region": object})
    bad.loc[0, "region"] = None
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(ValueError, match="'region' is empty in 1 rows"):
        scan(tmp_path / "bad.parquet", KEYS)


def test_two_key_values_with_one_partition_id_are_refused():
    frame = pd.DataFrame({"region": ["North Texas", "north-texas"], "f": ["a", "a"]})
    with pytest.raises(ValueError, match="both give partition id 'north-texas.a'"):
        partition_ids(frame, ("region", "f"))


def test_split_writes_each_block_its_rows_and_routes_moved_products(tmp_path, source):
    block_of = {"north-texas.large.fast": "b0", "north-texas.large.slow": "b0",
                "gulf.large.fast": "b1"}  # gulf.large.slow: in no block  # fmt: skip
    files = split(source, KEYS, block_of, tmp_path, routed={"slow-1": "fast"})
    assert sorted(files) == ["b0", "b1"]
    b0, b1 = read_part(files["b0"]), read_part(files["b1"])
    assert len(b0) == 10 and set(b0["region"].astype(str)) == {"North Texas"}
    # the routed product's rows are in its trained partition, the speed set back
    assert set(b0.loc[b0["product_id"] == "slow-1", "speed"]) == {"fast"}
    assert set(b1["product_id"]) == {"fast-0", "fast-1", "slow-1"}  # gulf's slow-1 moved here
    assert len(b1) == 5 + 2


def test_split_keeps_the_order_of_the_rows_and_of_the_blocks(tmp_path, monkeypatch):
    """Blocks' rows interleaved within and across batches, a null key, a partition in no
    block: each block's file holds its rows in the table's order, the blocks in the order
    their first rows come (the step's outputs follow it)."""
    monkeypatch.setattr(scoring_files, "BATCH_ROWS", 7)
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({
        "region": rng.choice(["a", "b", "c"], 60), "store_format": "large",
        "speed": rng.choice(["fast", "slow"], 60), "product_id": "p", "units": np.arange(60.0),
    })  # fmt: skip
    frame.loc[5, "region"] = None
    path = tmp_path / "t.parquet"
    frame.to_parquet(path, index=False)
    keyed = frame[frame["region"].notna()]  # the row without a key is in no block
    ids = partition_ids(keyed, KEYS)
    met = list(dict.fromkeys(ids))  # the blocks met first are not the first by name
    block_of = {pid: ("b2", "b0", "b1")[i % 3] for i, pid in enumerate(met) if i != 1}
    (tmp_path / "out").mkdir()
    files = split(path, KEYS, block_of, tmp_path / "out")
    assert list(files) == list(dict.fromkeys(block_of[p] for p in ids if p in block_of))
    for block, file in files.items():
        assert file.suffix == scoring_files.STAGED
        want = keyed[ids.map(block_of).eq(block)]
        got = read_part(file)
        assert got["units"].tolist() == want["units"].tolist()
        assert got["region"].tolist() == want["region"].tolist()


def parts(tmp_path, *frames) -> list:
    paths = []
    for i, frame in enumerate(frames):
        paths.append(tmp_path / f"part-{i}.parquet")
        frame.to_parquet(paths[-1], index=False)
    return paths


def test_merge_keeps_the_earlier_rows_of_partitions_not_rescored(tmp_path):
    target = tmp_path / "out" / "predictions.parquet"
    first = pd.DataFrame({"partition": ["a", "a", "b"], "prediction": [1.0, 2.0, 3.0]})
    merge_parts(parts(tmp_path, first), target)
    again = pd.DataFrame({"partition": ["b", "c"], "prediction": [30.0, 40.0]})
    done = pa.array(["b", "c"])
    rows = merge_parts(
        parts(tmp_path, again), target, keep=target,
        dropped=lambda t: pc.is_in(t.column("partition"), value_set=done),
    )  # fmt: skip
    got = pd.read_parquet(target).sort_values("prediction")
    assert rows == 4
    assert got["prediction"].tolist() == [1.0, 2.0, 30.0, 40.0]
    assert not list(target.parent.glob(".*tmp"))  # no temporary file left behind


def test_a_failed_merge_leaves_the_earlier_file_whole(tmp_path):
    target = tmp_path / "predictions.parquet"
    merge_parts(parts(tmp_path, pd.DataFrame({"partition": ["a"], "prediction": [1.0]})), target)
    before = target.read_bytes()
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(pa.ArrowInvalid):
        merge_parts([broken], target, keep=target)
    with pytest.raises(ValueError, match="nothing to write"):
        merge_parts([], tmp_path / "new.parquet")
    assert target.read_bytes() == before
    assert not (tmp_path / "new.parquet").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_merge_writes_categories_of_different_blocks_as_text(tmp_path):
    a = pd.DataFrame({"partition": ["a"], "region": pd.Categorical(["x"])})
    b = pd.DataFrame({"partition": ["b"], "region": pd.Categorical(["y"], categories=["y", "z"])})
    merge_parts(parts(tmp_path, a, b), tmp_path / "out.parquet", columns=["region", "partition"])
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert list(got.columns) == ["region", "partition"]
    assert got["region"].tolist() == ["x", "y"]


def test_sql_parts_replace_the_scored_partitions_in_one_transaction(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}"
    day = dt.date(2026, 1, 5)
    week = pd.Timestamp("2026-01-12")
    old = pd.DataFrame({"partition": ["a", "b"], "week": week, "prediction": [1.0, 2.0],
                        "scoring_date": str(day)})  # fmt: skip
    assert write_sql_parts(parts(tmp_path, old), url, "predictions", day, ["a", "b"]) == 2
    new = pd.DataFrame({"partition": ["b"], "week": week, "prediction": [20.0],
                        "scoring_date": str(day)})  # fmt: skip
    assert write_sql_parts(parts(tmp_path, new), url, "predictions", day, ["b"]) == 1
    with sqlite3.connect(tmp_path / "p.db") as conn:
        got = pd.read_sql("SELECT partition, prediction FROM predictions ORDER BY 1", conn)
    assert got["prediction"].tolist() == [1.0, 20.0]


def test_blocks_take_the_partitions_in_order():
    from manymodels.steps.score import make_blocks

    assert make_blocks(["a", "b", "c", "d", "e"], 2) == {
        "block-00000": ["a", "b"], "block-00001": ["c", "d"], "block-00002": ["e"],
    }  # fmt: skip
    assert make_blocks([], 64) == {}


def series(store: str, weeks: int = 12) -> pd.DataFrame:
    return pd.DataFrame({
        "week": pd.date_range("2024-01-01", periods=weeks, freq="7D"),
        "store_id": store, "product_id": "p1",
        "units": [float(i % 5) for i in range(weeks - 2)] + [None, None],
    })  # fmt: skip


def test_block_features_equal_each_partition_built_alone():
    from types import SimpleNamespace

    from manymodels.features import build_features
    from manymodels.scoring_blocks import block_features

    fs = {"horizon_weeks": 1, "lags": (0, 1), "rolling_windows": (2,), "covariates": {}}
    frames = {"a": series("s1"), "b": series("s2", weeks=9)}  # b starts later than a ends
    frames["b"]["week"] += pd.Timedelta(weeks=3)
    models = {p: SimpleNamespace(features=fs) for p in frames}
    got = block_features(frames, models)
    for pid, frame in frames.items():
        pd.testing.assert_frame_equal(got[pid], build_features(frame, **fs))
    # a series in two partitions, or settings of its own: each partition builds its own
    shared = {"a": series("s1"), "b": series("s1")}
    assert block_features(shared, models) == {}
    other = {"a": SimpleNamespace(features=fs), "b": SimpleNamespace(features={**fs, "lags": (0,)})}
    assert block_features(frames, other) == {}


def test_earlier_rows_without_a_newer_column_are_kept_with_it_empty(tmp_path):
    target = tmp_path / "predictions.parquet"
    pd.DataFrame({"partition": ["a"], "prediction": [1.0]}).to_parquet(target, index=False)
    new = pd.DataFrame({"partition": ["b"], "prediction": [2.0], "p10": [1.5]})
    merge_parts(
        parts(tmp_path, new), target, keep=target, columns=["partition", "prediction", "p10"]
    )
    got = pd.read_parquet(target).set_index("partition")
    assert got.loc["b", "p10"] == 1.5 and pd.isna(got.loc["a", "p10"])

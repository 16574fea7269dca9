"""Block-wide scoring pieces: the snapshot rows of a block in one pass, the per-partition
summaries from arrays, the compact models' rows cut from the block's, the worker count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from manymodels.scoring import series_codes
from manymodels.scoring_blocks import (
    COUNTS,
    BlockCodes,
    _summary,
    block_snapshot,
    block_snapshot_table,
    snapshot_counts,
    summarise,
)
from manymodels.scoring_compact import Rows
from manymodels.scoring_files import merge_parts, partition_ids
from manymodels.serve.snapshot import snapshot_rows
from manymodels.steps.score import auto_workers

KEYS = ("region", "store_format", "speed")


def _block() -> pd.DataFrame:
    rows = []
    for region, store, product, speed, first in [
        ("north", "S1", "P1", "fast", 0),
        ("north", "S1", "P2", "slow", 3),
        ("south", "S2", "P1", "fast", 5),
        ("south", "S2", "P3", "fast", 9),  # sells nothing: no first sale
    ]:
        for w in range(first, 14):
            units = np.nan if w >= 12 else (0.0 if product == "P3" or w == first else 4.0 + w)
            rows.append(
                {
                    "week": pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=w),
                    "region": region, "store_id": store, "store_format": "large",
                    "product_id": product, "speed": speed, "shipped": 1.0, "returns": 0.0,
                    "units": units, "tmax_f": float(w),
                }
            )  # fmt: skip
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3).reset_index(drop=True)


@pytest.mark.parametrize("history_weeks", [0, 3])
def test_the_block_snapshot_is_each_partitions_snapshot_rows_in_turn(history_weeks):
    table = _block()
    owner = partition_ids(table, KEYS).to_numpy()
    order = sorted(set(owner), reverse=True)[:2]  # the members' order, one partition left out
    want = pd.concat(
        [snapshot_rows(p, table[owner == p], history_weeks) for p in order], ignore_index=True
    )
    got = block_snapshot(table, owner, order, history_weeks)
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_the_arrow_snapshot_is_the_frames_written_and_read_back(tmp_path):
    """Built from the block's Arrow table (all history): the file the frame's would be."""
    table = _block()
    table.loc[table["units"].eq(4.0 + 5) & table["product_id"].eq("P1"), "units"] = np.nan
    table["promo"] = np.arange(len(table), dtype=np.int64)  # another numeric column: kept
    table["flag"] = True  # not a number: left out, as the frame leaves it
    path = tmp_path / "block.parquet"
    table.to_parquet(path, index=False)
    arrow = pq.read_table(path)
    table = arrow.to_pandas()
    owner = partition_ids(table, KEYS).to_numpy()
    order = sorted(set(owner), reverse=True)[:3]
    block_snapshot(table, owner, order).to_parquet(tmp_path / "frame.parquet", index=False)
    pq.write_table(block_snapshot_table(arrow, table, owner, order), tmp_path / "arrow.parquet")
    merge_parts([tmp_path / "frame.parquet"], tmp_path / "want.parquet")  # as the step merges
    merge_parts([tmp_path / "arrow.parquet"], tmp_path / "got.parquet")
    want, got = pq.read_table(tmp_path / "want.parquet"), pq.read_table(tmp_path / "got.parquet")
    assert got.schema == want.schema and "promo" in got.column_names
    assert "flag" not in got.column_names and got.column("first_sale").null_count > 0
    pd.testing.assert_frame_equal(got.to_pandas(), want.to_pandas(), check_exact=True)


def test_the_blocks_codes_are_the_frames_partitions_and_series(tmp_path):
    """Computed once from the Arrow table: the partition ids, rows and series codes the frame's
    own factorising gives, and the same snapshot as from per-row partition ids."""
    table = _block()
    table.to_parquet(tmp_path / "block.parquet", index=False)
    arrow = pq.read_table(tmp_path / "block.parquet")
    table = arrow.to_pandas()
    owner = partition_ids(table, KEYS).to_numpy()
    codes = BlockCodes(arrow, table, KEYS)
    assert codes.owner().tolist() == owner.tolist()
    order = sorted(set(owner), reverse=True)[:2]
    assert codes.index_in(order).tolist() == pd.Index(order).get_indexer(owner).tolist()
    assert codes.rows_of(order[1]).tolist() == (owner == order[1]).tolist()
    rows = owner != order[0]
    want, want_labels = series_codes(
        table.loc[rows, "store_id"].to_numpy(), table.loc[rows, "product_id"].to_numpy()
    )
    got, labels = codes.series_codes(rows)
    assert np.asarray(labels)[got].tolist() == np.asarray(want_labels)[want].tolist()
    assert got.tolist() == want.tolist()  # numbered in order of appearance, as there
    got = block_snapshot_table(arrow, table, None, order, codes=codes)
    assert got.equals(block_snapshot_table(arrow, table, owner, order))
    whole = sorted(set(owner), key=list(owner).index)  # every row, in the rows' order
    assert block_snapshot_table(arrow, table, None, whole, codes=codes).equals(
        block_snapshot_table(arrow, table, owner, whole)
    )


def test_the_snapshot_counts_from_codes_and_metadata_are_the_counted_ones(tmp_path):
    table = _block()
    table.to_parquet(tmp_path / "block.parquet", index=False)
    arrow = pq.read_table(tmp_path / "block.parquet")
    table = arrow.to_pandas()
    codes = BlockCodes(arrow, table, KEYS)
    order = sorted(set(codes.owner()))[1:]  # one partition (one series) left out
    part = block_snapshot_table(arrow, table, None, order, codes=codes)
    counted = snapshot_counts(part)
    assert counted == (3, "2024-03-18")  # P3 never sold but has rows; week 11 the last known
    assert snapshot_counts(part, codes, order) == counted
    written = part.replace_schema_metadata({COUNTS: b'{"series": 7, "last": null}'})
    assert snapshot_counts(written) == (7, None)  # what the block wrote is not counted again


def test_a_negative_snapshot_history_is_an_error():
    table = _block()
    with pytest.raises(ValueError, match="history_weeks must be >= 0"):
        block_snapshot(table, partition_ids(table, KEYS).to_numpy(), [], -1)


@pytest.mark.parametrize(
    ("kinds", "series"),
    [
        (["ensemble"] * 4, None),
        (["ensemble", "baseline (new series)", "ensemble", "baseline (new series)"], ["S1/P1"]),
        (["lasso", "lasso (new series: no baseline in this model)", "lasso", "lasso"], []),
    ],
)
def test_a_partitions_summary_from_arrays_is_the_summary_of_its_frame(kinds, series):
    value = pd.DataFrame(
        {
            "store_id": ["S1", "S1", "S2", "S2"],
            "product_id": ["P1", "P2", "P1", "P2"],
            "model_kind": kinds,
        }
    )
    pairs = (value["store_id"] + "/" + value["product_id"]).to_numpy(dtype=object)
    if series is not None:
        value["seen"] = [p in set(series) for p in pairs]
    else:
        value["seen"] = pd.NA
    assert _summary(np.array(kinds, object), pairs, series) == summarise(value)


def test_rows_cut_from_a_blocks_convert_each_column_once_and_read_their_own_rows():
    frame = pd.DataFrame({"x": np.arange(10.0), "s": list("abcdefghij")})
    block = Rows(frame)
    part = block.part(3, 7)
    assert len(part) == 4
    assert part.num("x").tolist() == [3.0, 4.0, 5.0, 6.0]
    assert part.text("s").tolist() == list("defg")
    assert ("num", "x") in block._cache  # converted for the whole block, once
    part.num("x")[0] = -1.0  # a part's arrays are its own
    assert block.num("x")[3] == 3.0
    assert block.part(7, 10).num("x").tolist() == [7.0, 8.0, 9.0]


@pytest.mark.parametrize(
    ("blocks", "per", "cores", "want"),
    [(1, 8, 2, 1), (4, 8, 2, 1), (8, 8, 2, 1), (16, 8, 2, 2), (157, 8, 2, 2), (157, 8, 16, 16)],
)
def test_one_worker_per_blocks_per_worker_blocks_at_most_one_per_core(
    blocks, per, cores, want, monkeypatch
):
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert auto_workers(blocks, per) == want

"""Partitions: the slow/fast rule, readable ids, and one key combination per partition."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from manymodels.data.partition import assign_speed, partition_id, split_partitions


def weekly(product: str, units: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"product_id": product, "units": units})


def test_a_product_exactly_at_the_threshold_is_slow():
    frame = pd.concat(
        [
            weekly("at", [0, 0, 0] + [5] * 7),  # 3 of 10 weeks sold nothing: 0.3
            weekly("below", [0, 0] + [5] * 8),  # 0.2
            weekly("all_zero", [0] * 4),
        ],
        ignore_index=True,
    )
    speed = assign_speed(frame, slow_zero_share=0.3)
    assert speed.groupby(frame["product_id"]).first().to_dict() == {
        "all_zero": "slow",
        "at": "slow",
        "below": "fast",
    }
    assert speed.index.equals(frame.index)
    assert (assign_speed(frame, slow_zero_share=1.0)[frame["product_id"] == "at"] == "fast").all()


def test_future_rows_do_not_count_and_take_their_products_speed():
    frame = pd.concat(
        [
            weekly("fast", [0] + [5] * 9 + [np.nan] * 10),  # counted as zeros it would be slow
            weekly("slow", [0] * 5 + [5] * 5 + [np.nan] * 2),
            weekly("future_only", [np.nan] * 3),
        ],
        ignore_index=True,
    )
    speed = assign_speed(frame, slow_zero_share=0.3)
    by_product = speed.groupby(frame["product_id"])
    assert by_product.nunique().eq(1).all()
    assert by_product.first().to_dict() == {"fast": "fast", "slow": "slow", "future_only": "fast"}


@pytest.mark.parametrize("share", [0, -0.1, 1.01, 30])
def test_a_threshold_outside_zero_to_one_is_refused(share):
    with pytest.raises(ValueError, match=r"slow_zero_share must be in \(0, 1\]"):
        assign_speed(weekly("p", [1.0]), share)


def test_speed_needs_product_and_units():
    with pytest.raises(ValueError, match=r"needs columns \['units'\]"):
        assign_speed(pd.DataFrame({"product_id": ["p"]}))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("North Texas", "large", "fast"), "north-texas.large.fast"),
        (["Mid-Atlantic", "small", "slow"], "mid-atlantic.small.slow"),
        (("  Pacific  Northwest ", "Big/Box!"), "pacific-northwest.big-box"),
        (("Région 7", 3), "r-gion-7.3"),
        (("only",), "only"),
    ],
)
def test_partition_ids_are_readable_slugs(values, expected):
    assert partition_id(values) == expected


@hypothesis_settings(database=None)  # no .hypothesis/ example store in the repository
@given(st.lists(st.text() | st.integers(), min_size=1, max_size=4))
def test_partition_ids_are_always_file_and_mlflow_safe(values):
    pid = partition_id(values)
    parts = pid.split(".")
    assert len(parts) == len(values)
    for part in parts:
        assert re.fullmatch(r"([a-z0-9]+(-[a-z0-9]+)*)?", part), pid
    assert partition_id(values) == pid


def test_each_partition_holds_one_key_combination(table):
    keys = ("region", "store_format", "speed")
    parts = split_partitions(table, keys)
    assert list(parts) == sorted(parts)
    assert len(parts) == 2 * 2 * 2  # two regions x two formats x slow/fast
    assert sum(len(p) for p in parts.values()) == len(table)
    for pid, frame in parts.items():
        assert frame[list(keys)].nunique().eq(1).all(), pid
        assert pid == partition_id(tuple(frame[list(keys)].iloc[0]))
        assert frame.index.equals(pd.RangeIndex(len(frame)))
    assert "north-texas.large.slow" in parts


def test_one_key_gives_one_partition_per_value(table):
    parts = split_partitions(table, ("region",))
    assert list(parts) == ["north-texas", "south-texas"]


def test_a_missing_key_column_is_named(table):
    with pytest.raises(ValueError, match=r"partition keys \['size'\] are not columns"):
        split_partitions(table, ("region", "size"))


def test_an_empty_key_value_is_counted(table):
    table.loc[:2, "store_format"] = np.nan
    with pytest.raises(ValueError, match="'store_format' is empty in 3 rows"):
        split_partitions(table)


def test_key_values_that_slug_alike_are_refused(table):
    table.loc[table["region"] == "South Texas", "region"] = "north texas"
    with pytest.raises(ValueError, match="both give partition id 'north-texas.large.fast'"):
        split_partitions(table)


def test_no_keys_at_all_is_refused(table):
    with pytest.raises(ValueError, match="no partition keys"):
        split_partitions(table, ())

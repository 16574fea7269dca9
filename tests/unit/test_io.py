"""Atomic outputs: a failed write leaves the previous file or folder whole, and nothing else."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from manymodels.io import atomic_dir, atomic_path, read_json, write_json, write_parquet, write_text


def listing(folder: Path) -> list[str]:
    """Every entry below ``folder``, hidden ones included, relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def umask():
    """Set a umask for the test and restore the previous one afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_text_replaces_the_file(tmp_path):
    target = tmp_path / "deep" / "er" / "out.txt"
    write_text("one", target)  # creates the parent folders
    assert write_text("two", target) == target
    assert target.read_text() == "two"
    assert listing(tmp_path / "deep" / "er") == ["out.txt"]


def test_a_writer_that_raises_leaves_the_old_file_and_no_temp_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old and complete")
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp != target
        tmp.write_text("half of the new")
        raise RuntimeError("disk on fire")
    assert target.read_text() == "old and complete"
    assert listing(tmp_path) == ["out.txt"]


def test_a_failing_parquet_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "table.parquet"
    good = pd.DataFrame({"a": [1, 2]})
    write_parquet(good, target)
    unwritable = pd.DataFrame({"a": [object(), object()]})  # pyarrow cannot convert these
    with pytest.raises((TypeError, ValueError)):  # pyarrow's ArrowInvalid / ArrowTypeError
        write_parquet(unwritable, target)
    pd.testing.assert_frame_equal(pd.read_parquet(target), good)
    assert listing(tmp_path) == ["table.parquet"]


def test_a_missing_target_stays_missing_when_the_writer_raises(tmp_path):
    with pytest.raises(KeyError), atomic_path(tmp_path / "new.txt") as tmp:
        tmp.write_text("partial")
        raise KeyError("x")
    assert listing(tmp_path) == []


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_outputs_follow_the_umask_not_mkstemp_private_modes(
    tmp_path, umask, mask, file_mode, dir_mode
):
    umask(mask)
    assert mode(write_text("x", tmp_path / "a.txt")) == file_mode
    assert mode(write_json({"a": 1}, tmp_path / "a.json")) == file_mode
    assert mode(write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "a.parquet")) == file_mode
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inner.txt").write_text("x")
    assert mode(tmp_path / "folder") == dir_mode


def test_write_json_is_sorted_indented_and_turns_dates_and_paths_into_strings(tmp_path):
    target = write_json({"b": dt.date(2018, 2, 19), "a": Path("x/y")}, tmp_path / "m.json")
    text = target.read_text()
    assert text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"')
    assert read_json(target) == {"a": "x/y", "b": "2018-02-19"}


def test_read_json_on_a_missing_file_names_the_file_and_the_step(tmp_path):
    missing = tmp_path / "conditioned" / "manifest.json"
    with pytest.raises(FileNotFoundError, match="run `manymodels condition` first") as err:
        read_json(missing, step="condition")
    assert str(missing) in str(err.value)
    with pytest.raises(FileNotFoundError, match="run the step that writes it first"):
        read_json(missing)


def test_atomic_dir_swaps_the_folder_in(tmp_path):
    target = tmp_path / "parts"
    target.mkdir()
    (target / "stale.parquet").write_text("from the previous run")
    with atomic_dir(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp != target
        assert (target / "stale.parquet").exists()  # readers see the old folder meanwhile
        (tmp / "fresh.parquet").write_text("new")
    assert listing(tmp_path) == ["parts", "parts/fresh.parquet"]


def test_atomic_dir_keeps_the_old_folder_when_the_body_raises(tmp_path):
    target = tmp_path / "parts"
    target.mkdir()
    (target / "good.parquet").write_text("complete")
    with pytest.raises(ValueError, match="bad partition"), atomic_dir(target) as tmp:
        (tmp / "half.parquet").write_text("partial")
        raise ValueError("bad partition")
    assert listing(tmp_path) == ["parts", "parts/good.parquet"]
    assert (target / "good.parquet").read_text() == "complete"


def test_atomic_dir_creates_a_new_folder_and_clears_a_leftover_old_one(tmp_path):
    (tmp_path / ".parts.old").mkdir()  # left by an earlier run that was killed mid-swap
    with atomic_dir(tmp_path / "sub" / "parts") as tmp:
        (tmp / "a.txt").write_text("a")
    with atomic_dir(tmp_path / "parts") as tmp:
        (tmp / "b.txt").write_text("b")
    assert listing(tmp_path) == ["parts", "parts/b.txt", "sub", "sub/parts", "sub/parts/a.txt"]


def _refuse(token: str):
    raise ValueError(f"not JSON: {token}")


def test_write_json_writes_strict_json_with_null_for_nan(tmp_path):
    """NaN and infinities are not JSON (jq, JavaScript and most parsers reject them): a metric
    that is undefined (no zero weeks, no baseline) is written as null, wherever it sits."""
    data = {
        "a": math.nan,
        "b": [1.0, math.inf, {"c": -math.inf}],
        "d": (math.nan,),
        "e": 0.5,
        "f": "nan",
    }
    path = write_json(data, tmp_path / "report.json")
    parsed = json.loads(path.read_text(), parse_constant=_refuse)
    assert parsed == {"a": None, "b": [1.0, None, {"c": None}], "d": [None], "e": 0.5, "f": "nan"}
    assert read_json(path) == parsed


def test_write_json_nulls_numpy_nan_too(tmp_path):
    import numpy as np

    path = write_json({"x": np.float64("nan"), "y": np.float64(2.5)}, tmp_path / "r.json")
    assert json.loads(path.read_text(), parse_constant=_refuse) == {"x": None, "y": 2.5}

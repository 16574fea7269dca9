"""Batch scoring's file work, streamed so that no process holds more than a block of partitions.

The conditioned table is read twice in record batches, never whole: :func:`scan` reads only its
key and product columns (which partitions there are, and where each class-changed product sits);
:func:`split` writes each block's rows to its own parquet file in a staging folder, which the
block's task (a local worker or a Spark executor) reads itself. :func:`merge_parts` writes the
block files the tasks wrote, plus the earlier rows to keep, into one parquet file row group by
row group, then replaces the target in one rename: a reader sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manymodels.data.partition import partition_id

__all__ = [
    "BATCH_ROWS",
    "STAGED",
    "merge_parts",
    "partition_ids",
    "read_part",
    "read_table",
    "scan",
    "split",
    "staged_writer",
    "write_staged",
]

BATCH_ROWS = 1 << 18  # rows per record batch read: bounds the parent's memory, not N
STAGED = ".arrow"  # the suffix of a staging file: Arrow IPC, LZ4-compressed buffers
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


def staged_writer(path: str | Path, schema: pa.Schema) -> pa.ipc.RecordBatchFileWriter:
    """A writer of the staging file ``path`` (Arrow IPC, LZ4); close it when done."""
    return pa.ipc.new_file(str(path), schema, options=_IPC)


def write_staged(table: pa.Table, path: str | Path) -> None:
    """``table`` as the staging file ``path``."""
    with staged_writer(path, table.schema) as writer:
        writer.write_table(table)


def read_table(path: str | Path) -> pa.Table:
    """A staging file (:data:`STAGED`) or a parquet file, whole."""
    if Path(path).suffix == STAGED:
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all()
    return pq.read_table(path)


def _batches(path: Path, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def scan(path: Path, keys: Iterable[str]) -> pd.DataFrame:
    """The distinct ``keys`` x ``product_id`` rows of the table at ``path`` (read in batches).

    Raises:
        ValueError: a key column is missing or has empty values (it names the column).
    """
    keys = list(keys)
    if not keys:
        raise ValueError("no partition keys: set partition.keys to one or more columns")
    names = pq.ParquetFile(path).schema_arrow.names
    missing = [k for k in keys if k not in names]
    if missing:
        raise ValueError(
            f"partition keys {missing} are not columns of {path}; check partition.keys"
        )
    wanted = [*keys, "product_id"] if "product_id" in names else keys
    seen, empty = [], dict.fromkeys(keys, 0)
    for batch in _batches(path, wanted):
        for key in keys:
            empty[key] += batch.column(key).null_count
        # distinct in Arrow first (in order of appearance), as text after: the same rows as
        # the batch's frame made text and deduplicated, at a fraction of the cost
        distinct = pa.Table.from_batches([batch]).group_by(wanted, use_threads=False)
        seen.append(distinct.aggregate([]).select(wanted).to_pandas().astype(str))
    for key, count in empty.items():
        if count:
            raise ValueError(
                f"partition key column {key!r} is empty in {count} rows: run validate first"
            )
    if not seen:
        return pd.DataFrame(columns=wanted)
    return pd.concat(seen, ignore_index=True).drop_duplicates(ignore_index=True)


def partition_ids(frame: pd.DataFrame, keys: Iterable[str]) -> pd.Series:
    """The partition id of every row (``frame``'s key columns as strings).

    Raises:
        ValueError: two key combinations give the same partition id.
    """
    keys = list(keys)
    if not len(frame):
        return pd.Series([], index=frame.index, dtype=object)
    # each key column factorised, its distinct values named once: the ids are made per
    # distinct combination, not per row (a block holds hundreds of thousands of rows)
    codes, names = [], []
    for key in keys:
        code, values = pd.factorize(frame[key], use_na_sentinel=False)
        codes.append(code.astype(np.int64))
        names.append(pd.Index(values).astype(str).to_numpy())
    combined = codes[0]
    for code, values in zip(codes[1:], names[1:], strict=True):
        combined = combined * len(values) + code
    combos, inverse = np.unique(combined, return_inverse=True)
    ids, seen = [], {}
    for combo in combos:
        values, rest = [], int(combo)
        for column in reversed(names):
            values.append(str(column[rest % len(column)]))
            rest //= len(column)
        values = tuple(reversed(values))
        pid = partition_id(values)
        if pid in seen and seen[pid] != values:  # else one partition would replace the other
            raise ValueError(
                f"key values {seen[pid]} and {values} both give partition id {pid!r}: "
                "make them differ in letters or digits"
            )
        seen[pid] = values
        ids.append(pid)
    return pd.Series(np.asarray(ids, object)[inverse.ravel()], index=frame.index, dtype=object)


def split(
    path: Path,
    keys: Iterable[str],
    block_of: dict[str, str],
    folder: Path,
    routed: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write the rows of each block (``block_of``: partition id -> block) to the staging file
    ``folder/<block>.arrow`` (:data:`STAGED`).

    Args:
        routed: ``{product: speed}`` set on those products' rows first (class changes routed
            back to the partition they were trained in).

    Returns:
        ``{block: staging file}`` for the blocks that got rows.
    """
    keys, routed = list(keys), routed or {}
    schema = pq.ParquetFile(path).schema_arrow
    if routed:  # the speed becomes plain text, as route_class_changes makes it
        schema = schema.set(schema.get_field_index("speed"), pa.field("speed", pa.string()))
    writers: dict[str, pa.ipc.RecordBatchFileWriter] = {}
    files: dict[str, Path] = {}
    order = sorted(set(block_of.values()))
    number = {block: i for i, block in enumerate(order)}
    block_number: dict[str, int] = {}  # key values joined -> their block's number (-1: none)
    try:
        for batch in _batches(path):
            table = pa.Table.from_batches([batch])
            if routed:
                table = _route(table, routed)
            where = _block_numbers(table, keys, block_of, number, block_number)
            found, first = np.unique(where, return_index=True)
            found = found[np.argsort(first)]  # the blocks in the order their rows come
            found = found[found >= 0]
            # the batch's rows grouped by block (one copy, when they are not already), each
            # block's rows a slice of it: a batch holds the rows of many blocks' partitions
            if (np.diff(where) < 0).any():
                by = np.argsort(where, kind="stable")
                table, where = table.take(pa.array(by)), where[by]
            starts = np.searchsorted(where, found, side="left")
            stops = np.searchsorted(where, found, side="right")
            for n, start, stop in zip(found.tolist(), starts, stops, strict=True):
                block = order[n]
                rows = table.slice(int(start), int(stop - start))
                if block not in writers:
                    files[block] = folder / f"{block}{STAGED}"
                    writers[block] = staged_writer(files[block], schema)
                writers[block].write_table(rows.cast(schema))
    finally:
        for writer in writers.values():
            writer.close()
    return files


_SEP = "\x1f"  # joins key values: a character no key value holds


def _block_numbers(table: pa.Table, keys, block_of, number, block_number) -> np.ndarray:
    """Each row's block number (-1: none, or a null key). Each key column dictionary-encoded
    in Arrow, the distinct combinations of their codes (a few partitions' worth a batch) named
    and looked up in Python (``block_number``: joined key values -> block number, filled here
    for the values not met before): no string hashed per row more than once per column."""
    combined = np.zeros(table.num_rows, np.int64)
    valid = np.ones(table.num_rows, bool)
    names = []
    for key in keys:
        encoded = pc.dictionary_encode(table.column(key).combine_chunks())
        valid &= encoded.indices.is_valid().to_numpy(zero_copy_only=False)
        index = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
        values = pc.cast(encoded.dictionary, pa.string()).to_pylist()
        combined = combined * max(len(values), 1) + index
        names.append(values)
    combos, inverse = np.unique(combined, return_inverse=True)
    joined = []
    for combo in combos.tolist():
        parts, rest = [], combo
        for values in reversed(names):
            rest, at = divmod(rest, max(len(values), 1))
            parts.append(values[at] if values else "")
        joined.append(_SEP.join(reversed(parts)))
    new = [v for v in dict.fromkeys(joined) if v not in block_number]
    if new:  # key values not met in earlier batches
        frame = pd.DataFrame([v.split(_SEP) for v in new], columns=list(keys))
        for value, pid in zip(new, partition_ids(frame, keys), strict=True):
            block_number[value] = number[block_of[pid]] if pid in block_of else -1
    codes = np.array([block_number[v] for v in joined], np.int64)
    return np.where(valid, codes[inverse.ravel()], -1)


def _route(table: pa.Table, routed: dict[str, str]) -> pa.Table:
    products = pc.cast(table.column("product_id"), pa.string())
    speed = pc.cast(table.column("speed"), pa.string()).to_pandas()
    new = products.to_pandas().map(routed)
    speed = new.where(new.notna(), speed)
    return table.set_column(table.schema.get_field_index("speed"), "speed", pa.array(speed))


def read_part(path: Path) -> pd.DataFrame:
    """A block file as a frame."""
    return read_table(path).to_pandas()


def merge_parts(
    parts: Iterable[Path],
    target: Path,
    *,
    keep: Path | None = None,
    dropped: Callable[[pa.Table], pa.Array] | None = None,
    columns: Iterable[str] | None = None,
    each: Callable[[pa.Table], None] | None = None,
) -> int:
    """Write ``parts`` (and the rows of ``keep`` that ``dropped`` does not mark) into ``target``.

    Each part and each row group of ``keep`` is one row group of the new file (the parts first,
    their columns' types for all; a column an earlier file lacks is empty there): memory stays
    at one part. The new file replaces ``target`` by a rename once it is complete; a failure
    leaves ``target`` as it was.

    Args:
        parts: parquet files with the same columns (their order: ``columns``, else the first's).
        keep: an earlier file of the same columns.
        dropped: a boolean mask per row of a ``keep`` row group: the rows to leave out.
        each: called with each part's rows as read (what the caller counts in them, without
            reading the parts again).

    Returns:
        The rows written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    writer, schema, rows = None, None, 0
    try:
        for found, is_part in _tables(parts, keep, dropped):
            if schema is None:
                schema = _plain(found.schema, columns)
                writer = pq.ParquetWriter(tmp, schema)
            table = _conform(found, schema)
            writer.write_table(table)
            rows += table.num_rows
            if each is not None and is_part:
                each(found)
        if writer is None:
            raise ValueError(f"nothing to write to {target}")
        writer.close()
        writer = None
        os.replace(tmp, target)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return rows


def _tables(parts, keep, dropped) -> Iterator[tuple[pa.Table, bool]]:
    for part in parts:  # first: the new rows set the columns' types
        yield read_table(part), True
    if keep is not None and Path(keep).exists():
        earlier = pq.ParquetFile(keep)
        for i in range(earlier.num_row_groups):
            table = earlier.read_row_group(i)
            if dropped is not None:
                table = table.filter(pc.invert(dropped(table)))
            if table.num_rows:
                yield table, False


def _plain(schema: pa.Schema, columns: Iterable[str] | None) -> pa.Schema:
    """``schema`` without dictionary types or pandas metadata (blocks' categories differ)."""
    names = list(columns) if columns is not None else schema.names
    fields = []
    for name in names:
        field = schema.field(name)
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    arrays = []
    for field in schema:
        if field.name not in table.column_names:  # a file written before the column existed
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table.column(field.name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)

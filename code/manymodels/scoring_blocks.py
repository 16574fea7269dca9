"""One batch-scoring task: a block of partitions, read from its own file, scored, written back.

:func:`score_block` runs in a local worker, in the step's own process or in a Spark executor:
it reads the block's rows (:func:`manymodels.scoring_files.split` wrote them), loads each
champion straight from its ``packed`` artifact (no pyfunc machinery, no copy from a local
artifact store), forecasts every partition with a champion, and writes the block's forecasts
and its rows of the serving snapshot to files beside the block's rows. It returns a small
summary per partition (rows, kinds, new and unseen series), never the forecasts, so the step's
own memory does not grow with the number of partitions. One partition's failure (a champion
whose artifacts are gone, a partition without future rows) is that partition's value, an
exception, and fails it alone (:func:`manymodels.backends.per_partition`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from manymodels import scoring_registry
from manymodels.features import KEYS, build_features
from manymodels.io import atomic_path
from manymodels.scoring import (
    INTERVAL_COLUMNS,
    NEW_SERIES_KIND,
    PREDICTION_COLUMNS,
    NothingToForecast,
    predict_future,
    series_codes,
)
from manymodels.scoring_compact import CompactModel, Rows
from manymodels.scoring_files import STAGED, partition_ids, read_table, write_staged
from manymodels.serve.snapshot import SNAPSHOT_COLUMNS
from manymodels.stores import Store

__all__ = [
    "BlockCodes",
    "BlockJob",
    "Member",
    "block_features",
    "block_snapshot",
    "block_snapshot_table",
    "forecasts_path",
    "score_block",
    "snapshot_counts",
    "snapshot_part",
    "summarise",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """A partition of a block and its champion (``version`` empty: none to score it with)."""

    partition: str
    model: str = ""
    version: str = ""
    kind: str = "?"
    source: str = ""  # the version's artifact location, when the registry listing gave it


@dataclass(frozen=True)
class BlockJob:
    """What a block's task needs: its rows' file, its partitions and how to score them."""

    rows: str  # the block's parquet file (shared storage on a cluster)
    members: tuple[Member, ...]
    store: Store
    keys: tuple[str, ...]
    scoring_date: str
    scored_at: str
    min_history_weeks: int = 0
    history_weeks: int = 0  # of the serving snapshot (0: all)
    name: str = ""  # of its output files ("": the rows file's); a re-run names its own
    snapshot: bool = True  # write the members' snapshot rows


class BlockCodes:
    """A block's rows as integer codes, computed once from its Arrow table: each row's
    partition (``code``, an index into ``ids``) and its store and product. Dictionary-encoding
    the key columns in Arrow costs a fraction of factorising the frame's text columns, and
    every step of the block (its partitions' rows, their grid, the snapshot) reads them."""

    def __init__(self, arrow: pa.Table, table: pd.DataFrame, keys: tuple[str, ...]) -> None:
        self.table, self.n = table, arrow.num_rows
        self.code, self.ids = _partition_codes(arrow, table, keys)
        self._keys = _text_codes(arrow, KEYS)  # None where a key is not text, or has nulls

    def owner(self) -> np.ndarray:
        """Each row's partition id."""
        return self.ids[self.code]

    def index_in(self, pids) -> np.ndarray:
        """Each row's partition's place in ``pids`` (-1: not there)."""
        if not self.n:
            return np.zeros(0, np.intp)
        return pd.Index(pids).get_indexer(self.ids)[self.code]

    def rows_of(self, pid: str) -> np.ndarray:
        """The rows of partition ``pid`` (a mask)."""
        return self.index_in([pid]) == 0

    def key_codes(self) -> list[np.ndarray] | None:
        """Per row, a code for each of the series keys (store, product); -1: empty."""
        return None if self._keys is None else [c for c, _ in self._keys]

    def series_codes(self, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """:func:`~manymodels.scoring.series_codes` of the rows ``rows`` (a mask)."""
        if self._keys is None:
            part = self.table[rows]
            return series_codes(part["store_id"].to_numpy(), part["product_id"].to_numpy())
        (store, stores), (product, products) = self._keys
        n = max(len(products), 1)
        codes, pairs = pd.factorize(store[rows] * n + product[rows])
        return codes, [f"{stores[c // n]}/{products[c % n]}" for c in pairs.tolist()]


def _encoded(column: pa.ChunkedArray) -> pa.DictionaryArray:
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return pc.dictionary_encode(array, null_encoding="encode")


def _partition_codes(arrow: pa.Table, table: pd.DataFrame, keys) -> tuple[np.ndarray, np.ndarray]:
    """Each row's code among the block's distinct key combinations, and each one's partition
    id (:func:`~manymodels.scoring_files.partition_ids` of those combinations: the same ids,
    the same check that two combinations do not give one id)."""
    if not arrow.num_rows:
        return np.zeros(0, np.intp), np.array([], object)
    combined = np.zeros(arrow.num_rows, np.int64)
    dictionaries = []
    for key in keys:
        encoded = _encoded(arrow.column(key))
        combined = combined * len(encoded.dictionary) + encoded.indices.to_numpy()
        dictionaries.append(encoded.dictionary)
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    distinct = table[list(keys)].iloc[first].reset_index(drop=True)  # as the frame has them
    ids = partition_ids(distinct, keys).to_numpy()
    return inverse.ravel(), ids


def _text_codes(arrow: pa.Table, keys) -> list[tuple[np.ndarray, list[str]]] | None:
    """Per key: each row's code and the text of each code; None when a key is not a text
    column or has empty values (the frame's own factorising decides there)."""
    out = []
    for key in keys:
        column = arrow.column(key)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)) or column.null_count:
            return None
        encoded = _encoded(column)
        out.append((encoded.indices.to_numpy().astype(np.int64), encoded.dictionary.to_pylist()))
    return out


def forecasts_path(rows: str | Path, name: str = "") -> Path:
    """Where the block whose rows are in ``rows`` writes its forecasts."""
    rows = Path(rows)
    return rows.with_name(f"{name or rows.stem}.forecasts.parquet")


def snapshot_part(rows: str | Path) -> Path:
    """Where the block whose rows are in ``rows`` writes its rows of the serving snapshot (a
    staging file: :data:`~manymodels.scoring_files.STAGED`)."""
    return Path(rows).with_suffix(f".snapshot{STAGED}")


def score_block(job: BlockJob) -> dict[str, object]:
    """Score every member of ``job`` with a champion; ``{partition: summary or exception}``.

    The forecasts go to :func:`forecasts_path` (absent when none scored), the snapshot rows
    of every member to :func:`snapshot_part`. The block is worked on whole: one features grid
    for the partitions whose models share feature settings, their forecasts assembled in one
    frame, the snapshot rows of all members in one pass. A partition that cannot share the
    grid (its own settings, a series in two partitions, no future rows) is forecast alone by
    :func:`~manymodels.scoring.predict_future`, which gives the same forecasts.
    """
    arrow = read_table(job.rows)
    table = arrow.to_pandas()
    codes = BlockCodes(arrow, table, job.keys)
    present = set(codes.ids[np.unique(codes.code)])
    out: dict[str, object] = {}
    models = {}
    for m in job.members:
        if m.partition not in present:
            if m.version:
                out[m.partition] = ValueError(f"partition {m.partition}: no rows to score")
            continue
        if m.version:
            try:
                models[m.partition] = scoring_registry.load_scoring_form(
                    job.store, m.model, m.version, m.source
                )
            except Exception as exc:  # noqa: BLE001 (a partition's failure is its own)
                out[m.partition] = exc
    members = {m.partition: m for m in job.members if m.partition in models}
    frames: dict[str, pd.DataFrame] = {}
    shared = _shared(models)
    grouped = {p for g in shared for p in g}
    alone = [p for p in members if p not in grouped]
    for pids in shared:
        try:
            got, left = _forecast_shared(table, codes, pids, models, members, job, out)
        except ValueError:
            log.debug("score: block features failed; per partition", exc_info=True)
            alone += pids
            continue
        frames |= got
        alone += left
    scored_alone = set(alone)
    for pid in (p for p in members if p in scored_alone):
        value = _forecast_alone(table[codes.rows_of(pid)].reset_index(drop=True), models[pid],
                                members[pid], job, out)  # fmt: skip
        if value is not None:
            frames[pid] = value
    if frames:  # whole or not at all: the step reads only the files of finished tasks
        with atomic_path(forecasts_path(job.rows, job.name)) as tmp:
            ordered = [frames[p] for p in members if p in frames]
            pd.concat(ordered, ignore_index=True).to_parquet(tmp, index=False)
    if job.snapshot and present:
        order = [m.partition for m in job.members if m.partition in present]
        _write_snapshot(job, arrow, table, codes, order)
    return out


def _write_snapshot(job: BlockJob, arrow: pa.Table, table: pd.DataFrame, codes, order) -> None:
    """The members' rows of the serving snapshot to :func:`snapshot_part`."""
    with atomic_path(snapshot_part(job.rows)) as tmp:
        if job.history_weeks:
            rows = block_snapshot(table, codes.owner(), order, job.history_weeks)
            snapshot = pa.Table.from_pandas(rows, preserve_index=False)
        else:  # all the history (the default): in Arrow, no frame converted back
            snapshot = block_snapshot_table(arrow, table, None, order, codes=codes)
        series, last = snapshot_counts(snapshot, None if job.history_weeks else codes, order)
        counted = {COUNTS: json.dumps({"series": series, "last": last})}
        metadata = (snapshot.schema.metadata or {}) | counted
        write_staged(snapshot.replace_schema_metadata(metadata), tmp)


COUNTS = b"manymodels.snapshot_counts"  # a snapshot part's series and last week (its metadata)


def snapshot_counts(
    part: pa.Table, codes: BlockCodes | None = None, order: list[str] | None = None
) -> tuple[int, str | None]:
    """A snapshot part's store x product series and its last week with known units (ISO date;
    None: none), from the part's metadata when its block wrote them there (the step's own
    process reads them, rather than counting every part again), else counted: the series from
    ``codes`` when the part holds all the rows of its block's partitions ``order``, else by an
    Arrow group-by (no frame)."""
    written = (part.schema.metadata or {}).get(COUNTS)
    if written is not None:
        counts = json.loads(written)
        return int(counts["series"]), counts["last"]
    keys = None if codes is None else codes.key_codes()
    if keys is not None:  # no empty keys there: every row has its series
        mine = codes.index_in(order) >= 0
        series = len(np.unique((keys[0] * (int(keys[1].max(initial=0)) + 1) + keys[1])[mine]))
    else:
        keyed = [pc.is_valid(part.column(k)) for k in ("store_id", "product_id")]
        series = part.filter(pc.and_(*keyed)).group_by(["store_id", "product_id"])
        series = series.aggregate([]).num_rows
    units = part.column("units")
    known = pc.is_valid(units)
    if pa.types.is_floating(units.type):
        known = pc.and_(known, pc.invert(pc.fill_null(pc.is_nan(units), True)))
    weeks = pc.filter(part.column("week"), known)
    last = pc.max(weeks).as_py() if len(weeks) else None
    return int(series), None if last is None else f"{pd.Timestamp(last):%F}"


def _forecast_alone(frame, packed, m: Member, job: BlockJob, out: dict) -> pd.DataFrame | None:
    """One partition's forecasts by :func:`~manymodels.scoring.predict_future` (its summary, or
    its error, into ``out``)."""
    try:
        value = predict_future(frame, packed, job.min_history_weeks)
    except NothingToForecast as exc:  # every series discontinued: a summary, not a failure
        out[m.partition] = {"rows": 0, "kinds": {}, "new_series": 0, "unseen": [],
                            "nothing": str(exc)}  # fmt: skip
        return None
    except Exception as exc:  # noqa: BLE001 (a partition's failure is its own)
        log.debug("score: %s failed", m.partition, exc_info=True)
        out[m.partition] = exc
        return None
    if "model_kind" not in value:
        value = value.assign(model_kind=m.kind)
    out[m.partition] = summarise(value)
    return value.assign(
        partition=m.partition, model_name=m.model, model_version=m.version,
        scoring_date=job.scoring_date, scored_at=job.scored_at,
    )[list(PREDICTION_COLUMNS)]  # fmt: skip


def _shared(models: dict) -> list[list[str]]:
    """The partitions whose models share feature settings (groups of two or more)."""
    groups: dict[str, list[str]] = {}
    for pid, packed in models.items():
        groups.setdefault(json.dumps(packed.features, sort_keys=True, default=str), []).append(pid)
    return [g for g in groups.values() if len(g) > 1]


def _forecast_shared(table, codes, pids, models, members, job, out):  # noqa: PLR0913, PLR0917
    """The forecasts of partitions ``pids`` from one features grid, assembled in one frame and
    cut per partition: what :func:`~manymodels.scoring.predict_future` gives each. Returns
    ``({partition: forecasts}, [partitions without future rows: to score alone])``.

    Raises:
        ValueError: the features cannot be built together (a series in two partitions, bad
            data): the caller scores the partitions one by one.
    """
    built, pairs, row_pid, young = _future_rows(
        table, codes, pids, models[pids[0]].features, job.min_history_weeks
    )
    bounds = np.searchsorted(row_pid, np.arange(len(pids) + 1))
    rows = Rows(built)
    values = {c: np.full(len(built), np.nan) for c in ("prediction", *INTERVAL_COLUMNS)}
    kind = np.empty(len(built), object)
    ok = np.zeros(len(built), bool)
    left = []
    for i, pid in enumerate(pids):
        span = slice(bounds[i], bounds[i + 1])
        if span.start == span.stop:  # no future rows: scored alone, which says why
            left.append(pid)
            continue
        try:
            _predict_into(models[pid], rows, built, span, young[span], values=values, kind=kind)
        except Exception as exc:  # noqa: BLE001 (a partition's failure is its own)
            log.debug("score: %s failed", pid, exc_info=True)
            out[pid] = exc
            continue
        ok[span] = True
        out[pid] = _summary(kind[span], pairs[span], getattr(models[pid], "series", None))
    if not ok.any():
        return {}, left
    keys = ["region", "store_format", "speed", "store_id", "product_id", "week"]
    frame = built.loc[ok, [k for k in keys if k in built.columns]].reset_index(drop=True)
    for column, v in values.items():
        frame[column] = v[ok]
    frame["model_kind"] = kind[ok]
    taken = row_pid[ok]
    frame["partition"] = np.asarray(pids, object)[taken]
    frame["model_name"] = np.array([members[p].model for p in pids], object)[taken]
    frame["model_version"] = np.array([members[p].version for p in pids], object)[taken]
    frame = frame.assign(scoring_date=job.scoring_date, scored_at=job.scored_at)
    frame = frame[list(PREDICTION_COLUMNS)]
    cut = np.searchsorted(taken, np.arange(len(pids) + 1))
    frames = {p: frame.iloc[cut[i] : cut[i + 1]] for i, p in enumerate(pids) if cut[i] < cut[i + 1]}
    return frames, left


def _future_rows(table, block: BlockCodes, pids, features: dict, min_history_weeks: int):
    """The features of the future rows of partitions ``pids`` (each after its own last week
    with known units) from one grid, grouped by partition in ``pids``' order; per row its
    "store/product", its partition's place in ``pids`` and whether its series is new."""
    pcode = block.index_in(pids)
    mine = pcode >= 0
    part = table if mine.all() else table[mine].reset_index(drop=True)
    pcode = pcode[mine]
    codes, labels = block.series_codes(mine)
    pairs = np.unique(codes.astype(np.int64) * len(pids) + pcode)
    if len(pairs) != len(labels):
        raise ValueError("a series in two partitions: each builds its own features")
    series_pid = np.empty(len(labels), np.int64)
    series_pid[pairs // len(pids)] = pairs % len(pids)
    week = part["week"].to_numpy()
    known = part["units"].notna().to_numpy()
    last = np.full(len(pids), np.datetime64("NaT"), dtype=week.dtype)
    by = pd.Series(week[known]).groupby(pcode[known]).max()
    last[by.index.to_numpy()] = by.to_numpy()
    later = (week > last[pcode]) & ~np.isnat(last[pcode])
    built = build_features(part, **features, rows=later)
    rows_of, built_labels = series_codes(
        built["store_id"].to_numpy(), built["product_id"].to_numpy()
    )
    series = pd.Index(labels).get_indexer(built_labels)[rows_of]
    order = np.argsort(series_pid[series], kind="stable")
    series = series[order]
    young = np.zeros(len(labels), bool)
    sold = part["units"].to_numpy(dtype=float) > 0
    if min_history_weeks > 0 and sold.any():
        first = pd.Series(week[sold]).groupby(codes[sold]).min()
        which = first.index.to_numpy()
        limit = last[series_pid[which]] - np.timedelta64(7 * min_history_weeks, "D")
        young[which] = first.to_numpy() > limit
    return (
        built.take(order).reset_index(drop=True),
        np.asarray(labels, object)[series],
        series_pid[series],
        young[series],
    )


def _predict_into(packed, rows: Rows, built, span: slice, new, *, values: dict, kind) -> None:
    """One partition's forecasts (rows ``span`` of ``built``) into ``values`` and ``kind``, as
    :func:`~manymodels.scoring.predict_future` makes them (new series by the packed baseline)."""
    if isinstance(packed, CompactModel):
        forecast = packed.predict_frame(rows.part(span.start, span.stop))
    else:
        forecast = packed.predict_frame(built.iloc[span].reset_index(drop=True))
    for column, v in values.items():
        v[span] = forecast[column].to_numpy() if column in forecast else np.nan
    kind[span] = packed.kind
    if not new.any() or packed.kind == "baseline":
        return
    fallback = getattr(packed, "fallback", None)
    if fallback is None:  # models saved before carry none
        kind[span][new] = f"{packed.kind} (new series: no baseline in this model)"
        return
    backup = fallback.predict_frame(built.iloc[span].reset_index(drop=True)[new])
    for column, v in values.items():
        v[span][new] = backup[column].to_numpy() if column in backup else np.nan
    kind[span][new] = NEW_SERIES_KIND


def _summary(kind: np.ndarray, pairs: np.ndarray, series) -> dict:
    """:func:`summarise` of one partition's forecasts from its arrays."""
    distinct = set(kind)
    if len(distinct) == 1:  # the usual case: one kind for every row
        kinds = pd.Series([len(kind)], index=list(distinct))
    else:
        kinds = pd.Series(kind, dtype="str").value_counts()
    new = np.zeros(len(kind), bool)
    for k in distinct:
        if "new series" in str(k):
            new |= kind == k
    summary = {
        "rows": len(kind),
        "kinds": {str(k): int(n) for k, n in kinds.items()},
        "new_series": len(set(pairs[new])),
        "unseen": None,
    }
    if series is not None:
        known = set(series)
        summary["unseen"] = sorted({p for p in set(pairs) if p not in known})
    return summary


def block_snapshot(
    table: pd.DataFrame, owner: np.ndarray, order: list[str], history_weeks: int = 0
) -> pd.DataFrame:
    """The serving snapshot rows of the partitions ``order`` (``owner``: each row's partition)
    in one pass: :func:`~manymodels.serve.snapshot.snapshot_rows` of each, concatenated."""
    if history_weeks < 0:
        raise ValueError(f"history_weeks must be >= 0, got {history_weeks}")
    rank = pd.Index(order).get_indexer(owner)
    take = np.flatnonzero(rank >= 0)
    take = take[np.argsort(rank[take], kind="stable")]
    rows = table.take(take).reset_index(drop=True).assign(partition=owner[take])
    extra = [
        c
        for c in rows.select_dtypes("number").columns
        if c not in SNAPSHOT_COLUMNS and c not in ("shipped", "returns")
    ]
    rows = rows[[c for c in (*SNAPSHOT_COLUMNS, *extra) if c in rows.columns]]
    groups = [rows["partition"], *(rows[k] for k in KEYS)]
    sold = rows["week"].where(rows["units"] > 0)
    rows = rows.assign(first_sale=sold.groupby(groups, observed=True).transform("min"))
    if history_weeks:
        known = rows["units"].notna()
        rank = rows[known].groupby(["partition", *KEYS])["week"].rank(ascending=False)
        rows = rows[~known | rank.reindex(rows.index).le(history_weeks)]
    return rows.reset_index(drop=True)


def block_snapshot_table(
    arrow: pa.Table,
    table: pd.DataFrame,
    owner: np.ndarray | None,
    order: list[str],
    *,
    codes: BlockCodes | None = None,
) -> pa.Table:
    """:func:`block_snapshot` with all the history (``history_weeks`` 0) as an Arrow table:
    ``arrow``'s rows taken as they are (``table``: the same rows as a frame, for the keys), the
    first sale per series from integer codes. The same rows, columns and values as the frame,
    without its conversion back to Arrow (~5 CPU-ms per partition of ~4,200 rows).
    ``codes``: the block's (then ``owner`` is not read), else made from ``owner``."""
    rank = codes.index_in(order) if codes is not None else pd.Index(order).get_indexer(owner)
    take = np.flatnonzero(rank >= 0)
    take = take[np.argsort(rank[take], kind="stable")]
    numeric = [
        f.name
        for f in arrow.schema
        if (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))
        and f.name not in SNAPSHOT_COLUMNS
        and f.name not in ("shipped", "returns")
    ]
    have = set(arrow.column_names)
    names = [c for c in (*SNAPSHOT_COLUMNS, *numeric) if c == "partition" or c in have]
    rows = arrow.select([c for c in names if c != "partition"])  # only these columns taken
    whole = len(take) == arrow.num_rows and (np.diff(take) > 0).all()
    rows = rows if whole else rows.take(pa.array(take, pa.int64()))  # as they are: no copy
    partition = pa.DictionaryArray.from_arrays(
        pa.array(rank[take], pa.int32()), pa.array(order, pa.string())
    ).cast(pa.string())
    columns = [partition if c == "partition" else rows.column(c) for c in names]
    first = _first_sale(table, rank, take, codes)
    columns.append(pa.array(first, type=rows.schema.field("week").type, from_pandas=True))
    return pa.Table.from_arrays(columns, names=[*names, "first_sale"])


def _first_sale(
    table: pd.DataFrame, rank: np.ndarray, take: np.ndarray, block: BlockCodes | None = None
) -> np.ndarray:
    """Per row of ``take`` (rows of ``table``), the first week its partition x series sold
    (NaT: never): ``block_snapshot``'s group-by minimum, from integer codes (``block``'s
    store and product codes when it has them)."""
    codes = [rank[take].astype(np.int64)]
    known = block.key_codes() if block is not None else None
    for i, key in enumerate(KEYS):
        if known is not None:
            code = known[i][take]
        else:
            code, _ = pd.factorize(table[key].to_numpy()[take])
        codes.append(code.astype(np.int64))
    group = np.zeros(len(take), np.int64)
    for code in codes:
        group = group * (int(code.max(initial=0)) + 2) + (code + 1)
    _, group = np.unique(group, return_inverse=True)
    week = table["week"].to_numpy()[take]
    units = table["units"].to_numpy(dtype=float)[take]
    sold = (units > 0) & ~np.isnat(week)
    first = np.full(len(take), np.datetime64("NaT"), dtype=week.dtype)
    if sold.any():
        least = pd.Series(week[sold]).groupby(group[sold]).min()
        found = np.full(int(group.max()) + 1, np.datetime64("NaT"), dtype=week.dtype)
        found[least.index.to_numpy()] = least.to_numpy()
        first = found[group]
    keyless = np.zeros(len(take), bool)
    for code in codes[1:]:
        keyless |= code < 0
    first[keyless] = np.datetime64("NaT")  # a row without a key: in no group
    return first


def block_features(
    frames: dict[str, pd.DataFrame], models: dict, *, future_only: bool = False
) -> dict[str, pd.DataFrame]:
    """The features of many partitions built at once, per partition: one weeks x series grid
    for all the partitions whose models share feature settings (a partition's features depend
    only on its own series, so they are the same as built alone, at a fraction of the cost).
    ``future_only``: only each partition's rows after its last week with known units (what
    scoring forecasts), split from the block's without handing out its history.

    A partition whose features cannot be built with the others (its settings are its own, a
    series it shares with another partition, an error) is left out: it builds its own.
    """
    groups: dict[str, list[str]] = {}
    for pid, packed in models.items():
        groups.setdefault(json.dumps(packed.features, sort_keys=True, default=str), []).append(pid)
    out: dict[str, pd.DataFrame] = {}
    for pids in groups.values():
        if len(pids) < 2:  # noqa: PLR2004 (nothing to share)
            continue
        pairs = {p: frames[p]["store_id"].astype(str) + "/" + frames[p]["product_id"].astype(str)
                 for p in pids}  # fmt: skip
        owner = pd.concat([pd.Series(p, index=pd.unique(pairs[p])) for p in pids])
        if owner.index.has_duplicates:  # a series in two partitions: each builds its own
            continue
        table = pd.concat([frames[p] for p in pids], ignore_index=True)
        rows = np.concatenate([_later(frames[p]) for p in pids]) if future_only else None
        try:
            built = build_features(table, **models[pids[0]].features, rows=rows)
        except ValueError:
            log.debug("score: block features failed; per partition", exc_info=True)
            continue
        owners = _owners(built, owner)
        for pid, part in built.groupby(owners, sort=False):
            out[str(pid)] = part.reset_index(drop=True)
    return out


def _later(frame: pd.DataFrame) -> np.ndarray:
    """The rows of a partition after its last week with known units (what scoring forecasts)."""
    week = frame["week"].to_numpy()
    known = frame["units"].notna().to_numpy()
    if not known.any():
        return np.zeros(len(week), bool)
    return week > week[known].max()


def _owners(built: pd.DataFrame, owner: pd.Series) -> np.ndarray:
    """The partition of each row of ``built`` (``owner``: partition by "store/product")."""
    rows, labels = series_codes(built["store_id"].to_numpy(), built["product_id"].to_numpy())
    return owner.reindex(pd.Index(labels)).to_numpy()[rows]


def summarise(value: pd.DataFrame) -> dict:
    """Per partition: its rows, the kinds that forecast it, its new and its unseen series."""
    kinds = value["model_kind"].value_counts()
    pairs = value["store_id"].astype(str) + "/" + value["product_id"].astype(str)
    new = value["model_kind"].astype(str).str.contains("new series", regex=False)
    summary = {
        "rows": len(value),
        "kinds": {str(k): int(n) for k, n in kinds.items()},
        "new_series": int(pairs[new].nunique()),
        "unseen": None,
    }
    if "seen" in value and value["seen"].notna().all():
        summary["unseen"] = sorted(set(pairs[~value["seen"].astype(bool)]))
    return summary

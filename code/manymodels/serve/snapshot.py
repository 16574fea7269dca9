"""The feature snapshot: what the online API needs to answer a request that carries only keys.

Batch scoring writes it (:func:`write_snapshot`) next to its predictions: for every series the
latest ``history_weeks`` weeks with known units plus the future rows (covariates, units empty)
of the conditioned table, with the series' partition id. The server reads it
(:class:`Snapshot`) and builds each model's features from it, so a served forecast equals the
batch forecast of the same model and data, new series and class changes included: each row
carries its series' first sale in the whole conditioned history (``first_sale``, so a series is
judged new as batch scoring judges it even when the snapshot keeps fewer weeks), and the manifest
carries ``min_history_weeks``, the partition keys and the products whose class changed since
training (``class_changes``). The file is replaced atomically (write, then
rename), so a server never reads half a snapshot, and a manifest beside it says when and from
what it was written. This module does not import the web stack: the batch step imports it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd

from manymodels.features import COVARIATES, ID_COLUMNS, KEYS

__all__ = [
    "SNAPSHOT_COLUMNS",
    "Snapshot",
    "SnapshotError",
    "snapshot_path",
    "snapshot_rows",
    "write_manifest",
    "write_snapshot",
]

SNAPSHOT_COLUMNS = ("partition", "week", *KEYS, *ID_COLUMNS, "units", *COVARIATES)


class SnapshotError(RuntimeError):
    """The snapshot is missing or unreadable; the message names the file and what to do."""


def snapshot_path(settings) -> Path:
    """``serving.snapshot`` (environment variables expanded), else the working folder's."""
    given = os.path.expandvars(settings.serving.snapshot)
    return Path(given) if given else settings.path("serving", "snapshot.parquet")


def write_snapshot(
    parts: dict[str, pd.DataFrame],
    path: str | Path,
    history_weeks: int = 0,
    *,
    min_history_weeks: int = 0,
    class_changes: dict | None = None,
    keys: tuple[str, ...] | list[str] = (),
) -> Path:
    """Write the latest ``history_weeks`` of each series plus its future rows to ``path``.

    Args:
        parts: ``{partition id: standard-table rows}`` (:func:`~manymodels.data.partition.
            split_partitions`), after batch scoring routed class-changed products back.
        path: the parquet file; a ``.json`` manifest is written beside it.
        history_weeks: weeks with known units kept per series (0: all of them).
        min_history_weeks: batch scoring's ``data.min_history_weeks`` (younger series are new
            and answered by the baseline packed in the ensemble).
        class_changes: ``{product: [trained class, class now]}`` (the conditioned manifest's
            ``against_training.class_changes``).
        keys: the partition keys (``partition.keys``), to route a class-changed product.

    Returns:
        The path written.
    """
    if history_weeks < 0:
        raise ValueError(f"history_weeks must be >= 0, got {history_weeks}")
    frames = [snapshot_rows(pid, frame, history_weeks) for pid, frame in parts.items()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    write_manifest(
        path, rows=len(table), partitions=len(parts),
        series=int(table.groupby(list(KEYS)).ngroups) if len(table) else 0,
        history_weeks=history_weeks, last_actual_week=_last_actual(table),
        min_history_weeks=min_history_weeks, keys=keys, class_changes=class_changes,
    )  # fmt: skip
    return path


def snapshot_rows(pid: str, frame: pd.DataFrame, history_weeks: int = 0) -> pd.DataFrame:
    """One partition's rows of the snapshot (:func:`write_snapshot`; batch scoring writes them
    block by block)."""
    if history_weeks < 0:
        raise ValueError(f"history_weeks must be >= 0, got {history_weeks}")
    rows = frame.assign(partition=pid)
    # the declared columns, then every other numeric column: the covariates pipelines/data.yaml
    # names (shipped and returns add up to the target and are no features)
    extra = [
        c
        for c in rows.select_dtypes("number").columns
        if c not in SNAPSHOT_COLUMNS and c not in ("shipped", "returns")
    ]
    rows = rows[[c for c in (*SNAPSHOT_COLUMNS, *extra) if c in rows.columns]]
    rows = rows.assign(first_sale=_first_sale(rows))  # before the history is cut
    if history_weeks:
        known = rows["units"].notna()
        rank = rows[known].groupby(list(KEYS))["week"].rank(ascending=False)
        rows = rows[~known | rank.reindex(rows.index).le(history_weeks)]
    return rows.reset_index(drop=True)


def write_manifest(
    path: Path,
    *,
    rows: int,
    partitions: int,
    series: int,
    history_weeks: int,
    last_actual_week: str | None,
    min_history_weeks: int = 0,
    keys: tuple[str, ...] | list[str] = (),
    class_changes: dict | None = None,
) -> Path:
    """The ``.json`` manifest beside the snapshot ``path`` (see :func:`write_snapshot`)."""
    manifest = {
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rows": rows,
        "partitions": partitions,
        "series": series,
        "history_weeks": history_weeks,
        "last_actual_week": last_actual_week,
        "min_history_weeks": int(min_history_weeks),
        "partition_keys": list(keys),
        "class_changes": {str(p): list(v) for p, v in (class_changes or {}).items()},
    }
    target = Path(path).with_suffix(".json")
    target.write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def _first_sale(rows: pd.DataFrame) -> pd.Series:
    """Per row, the first week its series sold anything (NaT: never)."""
    sold = rows["week"].where(rows["units"] > 0)
    return sold.groupby([rows[k] for k in KEYS], observed=True).transform("min")


def _last_actual(table: pd.DataFrame) -> str | None:
    if table.empty or not table["units"].notna().any():
        return None
    return f"{table.loc[table['units'].notna(), 'week'].max():%F}"


class Snapshot:
    """A loaded snapshot: rows by partition and the partition of every series.

    Raises:
        SnapshotError: the file is missing, unreadable or lacks a column.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.mtime = self.path.stat().st_mtime
            table = pd.read_parquet(self.path)
        except FileNotFoundError as exc:
            raise SnapshotError(
                f"no feature snapshot at {self.path}: run batch scoring (manymodels score) "
                "first, or point serving.snapshot at one"
            ) from exc
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"feature snapshot {self.path} is unreadable: {exc}") from exc
        missing = [c for c in ("partition", "week", *KEYS, "units") if c not in table.columns]
        if missing:
            raise SnapshotError(f"feature snapshot {self.path} lacks column(s) {missing}")
        self.rows = len(table)
        self.parts: dict[str, pd.DataFrame] = {
            str(pid): frame.reset_index(drop=True)
            for pid, frame in table.groupby("partition", sort=True, observed=True)
        }
        # requests name series as text; the rows keep the key types the models were fitted on
        self._rows: dict[tuple[str, str], tuple[str, pd.Index]] = {}
        for pid, frame in self.parts.items():
            for (store, product), index in frame.groupby(list(KEYS), observed=True).groups.items():
                self._rows[(str(store), str(product))] = (pid, index)
        manifest = self.path.with_suffix(".json")
        self.manifest = json.loads(manifest.read_text()) if manifest.exists() else {}

    @property
    def min_history_weeks(self) -> int:
        """Batch scoring's ``data.min_history_weeks`` (0 in a snapshot written before it)."""
        return int(self.manifest.get("min_history_weeks") or 0)

    @property
    def class_changes(self) -> dict[str, list[str]]:
        """``{product: [trained class, class now]}`` at the time of the snapshot."""
        return dict(self.manifest.get("class_changes") or {})

    @property
    def keys(self) -> list[str]:
        """The partition keys the partition ids are made of (empty: not recorded)."""
        return list(self.manifest.get("partition_keys") or [])

    @property
    def series_count(self) -> int:
        return len(self._rows)

    def partition_of(self, store_id: str, product_id: str) -> str | None:
        """The partition of a series, or None when the snapshot does not have the series."""
        found = self._rows.get((str(store_id), str(product_id)))
        return found[0] if found else None

    def series(self, store_id: str, product_id: str) -> pd.DataFrame:
        """The rows of one series (empty when the snapshot does not have it)."""
        found = self._rows.get((str(store_id), str(product_id)))
        if found is None:
            return pd.DataFrame(columns=list(SNAPSHOT_COLUMNS))
        pid, index = found
        return self.parts[pid].loc[index]

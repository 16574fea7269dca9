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

from manymodels import registry
from manymodels.data.partition import split_partitions
from manymodels.features import build_features
from manymodels.io import atomic_path
from manymodels.scoring import PREDICTION_COLUMNS, predict_future, series_codes
from manymodels.scoring_files import read_part
from manymodels.serve.snapshot import snapshot_rows

__all__ = [
    "BlockJob",
    "Member",
    "block_features",
    "forecasts_path",
    "score_block",
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
    store: registry.Store
    keys: tuple[str, ...]
    scoring_date: str
    scored_at: str
    min_history_weeks: int = 0
    history_weeks: int = 0  # of the serving snapshot (0: all)
    name: str = ""  # of its output files ("": the rows file's); a re-run names its own
    snapshot: bool = True  # write the members' snapshot rows


def forecasts_path(rows: str | Path, name: str = "") -> Path:
    """Where the block whose rows are in ``rows`` writes its forecasts."""
    rows = Path(rows)
    return rows.with_name(f"{name or rows.stem}.forecasts.parquet")


def snapshot_part(rows: str | Path) -> Path:
    """Where the block whose rows are in ``rows`` writes its rows of the serving snapshot."""
    return Path(rows).with_suffix(".snapshot.parquet")


def score_block(job: BlockJob) -> dict[str, object]:
    """Score every member of ``job`` with a champion; ``{partition: summary or exception}``.

    The forecasts go to :func:`forecasts_path` (absent when none scored), the snapshot rows
    of every member to :func:`snapshot_part`.
    """
    table = read_part(Path(job.rows))
    parts = split_partitions(table, job.keys) if len(table) else {}
    del table
    out: dict[str, object] = {}
    frames, snapshot, models = [], [], {}
    for m in job.members:
        frame = parts.get(m.partition)
        if frame is None:
            if m.version:
                out[m.partition] = ValueError(f"partition {m.partition}: no rows to score")
            continue
        if job.snapshot:
            snapshot.append(snapshot_rows(m.partition, frame, job.history_weeks))
        if m.version:
            try:
                models[m.partition] = registry.load_scoring_form(
                    job.store, m.model, m.version, m.source
                )
            except Exception as exc:  # noqa: BLE001 (a partition's failure is its own)
                out[m.partition] = exc
    features = block_features({p: parts[p] for p in models}, models, future_only=True)
    for m in job.members:
        if m.partition not in models:
            continue
        try:
            value = predict_future(
                parts[m.partition], models[m.partition], job.min_history_weeks,
                features.get(m.partition),
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 (a partition's failure is its own)
            log.debug("score: %s failed", m.partition, exc_info=True)
            out[m.partition] = exc
            continue
        if "model_kind" not in value:
            value = value.assign(model_kind=m.kind)
        out[m.partition] = summarise(value)
        frames.append(
            value.assign(
                partition=m.partition, model_name=m.model, model_version=m.version,
                scoring_date=job.scoring_date, scored_at=job.scored_at,
            )[list(PREDICTION_COLUMNS)]
        )  # fmt: skip
    if frames:  # whole or not at all: the step reads only the files of finished tasks
        with atomic_path(forecasts_path(job.rows, job.name)) as tmp:
            pd.concat(frames, ignore_index=True).to_parquet(tmp, index=False)
    if snapshot:
        with atomic_path(snapshot_part(job.rows)) as tmp:
            pd.concat(snapshot, ignore_index=True).to_parquet(tmp, index=False)
    return out


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
        try:
            built = build_features(
                pd.concat([frames[p] for p in pids], ignore_index=True),
                **models[pids[0]].features,
            )
        except ValueError:
            log.debug("score: block features failed; per partition", exc_info=True)
            continue
        owners = _owners(built, owner)
        if future_only:
            week = built["week"].to_numpy()
            known = built["units"].notna().to_numpy()
            last = pd.Series(week[known]).groupby(owners[known]).max()
            later = week > last.reindex(owners).to_numpy()
            built, owners = built[later], owners[later]
        for pid, rows in built.groupby(owners, sort=False):
            out[str(pid)] = rows.reset_index(drop=True)
    return out


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

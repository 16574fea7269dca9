"""Step ``score``: batch forecasts with each partition's ``champion``, in parallel.

For every partition in the conditioned data the champion is looked up by name and alias in the
registry of ``--env`` (prod on release branches). A champion trained more than
``scoring.max_model_age_days`` before the scoring date is refused unless ``--allow-stale`` (and
reported either way); a partition without a model is reported, never skipped silently. The
forecasts go to ``<workdir>/predictions/scoring_date=<date>/predictions.parquet`` and to a SQL
table (SQLite by default; any SQLAlchemy URL in ``scoring.sql_url``).

Re-scoring a date replaces, per partition, only what this run scored, in both outputs; a
partition that scored before and fails now keeps its earlier predictions (the report says so),
and a run that scores nothing writes nothing. A warehouse that cannot be reached (or whose driver
is missing) is reported with its redacted URL; the parquet output is written all the same. Every
URI in the report and the logs is redacted. Exits 1 when any partition could not be scored or
the SQL write failed.

Memory stays at a block of partitions (``scoring.block_size``), whatever their number: the
conditioned table is read in record batches and split into one file per block, each block's
task (a local worker, this process, or a Spark executor) reads its own file, loads its champions
straight from their ``packed`` artifacts and writes its forecasts beside it, and the outputs are
written from those files row group by row group, then renamed into place (docs/scale-out.md).
The champions of all partitions come from one registry listing.

The age counts from the champion's last validation: its training, or the last time the gate kept
it against a retrained challenger on fresh data (tag ``last_validated_at``); the report says
which.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from manymodels import backends, scoring_registry
from manymodels.config import ConfigError
from manymodels.io import read_json, write_text
from manymodels.monitoring.staleness import age_basis
from manymodels.redact import redact
from manymodels.report import markdown_table
from manymodels.scoring import (
    PREDICTION_COLUMNS,
    WarehouseError,
    model_age_days,
    route_class_changes,
    write_sql_parts,
)
from manymodels.scoring_blocks import (
    BlockJob,
    Member,
    forecasts_path,
    score_block,
    snapshot_counts,
    snapshot_part,
)
from manymodels.scoring_files import (
    merge_parts,
    partition_ids,
    read_part,
    scan,
    split,
    write_staged,
)
from manymodels.serve.snapshot import snapshot_path, snapshot_rows, write_manifest
from manymodels.steps import (
    add_data_option,
    as_of_date,
    base_parser,
    guarded,
    parse_date,
    settings_from,
    setup_logging,
)
from manymodels.steps.condition import TABLE
from manymodels.stores import Store, model_name, resolve_store

__all__ = [
    "auto_workers",
    "collect",
    "lifecycle_section",
    "main",
    "make_blocks",
    "plan",
    "write_outputs",
]

log = logging.getLogger(__name__)


def champions_of(store: Store, settings, pids) -> dict:
    """``{partition: champion version}`` from one registry listing (by name where the backend
    has no pattern search; from the tables themselves in an embedded store:
    :mod:`manymodels.scoring_registry`)."""
    names = {model_name(settings, pid): pid for pid in pids}
    listed = scoring_registry.champions(store, settings.mlflow.model_prefix, list(names))
    return {names[name]: v for name, v in listed.items() if name in names}


def plan(parts, store: Store, settings, scoring_date: dt.date, allow_stale: bool,
         *, champions: dict | None = None):  # fmt: skip
    """Per partition (``parts``: their ids): its champion, age and status; and a
    :class:`~manymodels.scoring_blocks.Member` for each usable one."""
    parts = list(parts)
    champions = champions_of(store, settings, parts) if champions is None else champions
    limit = settings.scoring.max_model_age_days
    status, tasks = {}, {}
    for pid in parts:
        name = model_name(settings, pid)
        champion = champions.get(pid)
        if champion is None:
            status[pid] = {"model": name, "status": "no model"}
            continue
        created = dt.datetime.fromtimestamp(champion.creation_timestamp / 1000, dt.UTC)
        stamp, basis = age_basis(champion.tags, created.isoformat())  # last validation first
        age = model_age_days(stamp, scoring_date)
        stale = age > limit
        if stale:
            log.warning("score: %s v%s was last %s %d days before %s (limit: %d)",
                        name, champion.version, basis, age, scoring_date, limit)  # fmt: skip
        usable = allow_stale or not stale
        kind = champion.tags.get("model_kind", "?")
        status[pid] = {
            "model": name, "version": str(champion.version), "age_days": age, "age_basis": basis,
            "kind": kind,
            "status": ("scored (stale)" if stale else "scored") if usable else "stale: refused",
        }  # fmt: skip
        if usable:
            tasks[pid] = Member(
                pid, name, str(champion.version), kind, getattr(champion, "source", "") or ""
            )
    return status, tasks


def make_blocks(pids: list[str], block_size: int) -> dict[str, list[str]]:
    """``{block name: partitions}``: ``pids`` in order, ``block_size`` to a block."""
    size = max(1, block_size)
    return {f"block-{i // size:05d}": pids[i : i + size] for i in range(0, len(pids), size)}


NOTHING = "nothing to forecast"


def collect(outcomes: dict, status: dict, nothing: str | None = None) -> list[str]:
    """Each partition's outcome (a summary, or its error) into its status; the ones scored.

    A partition with history but no future rows gets ``nothing`` as its status (why: its
    series are all discontinued) where that is the reason; where it cannot be (``None``: the
    table has no future rows at all), it failed.
    """
    scored = []
    for pid, outcome in outcomes.items():
        s = status[pid]
        if not outcome.ok:
            s["status"] = f"failed: {redact(outcome.error)}"
            continue
        if outcome.value.get("nothing"):
            s["rows"] = 0
            s["status"] = nothing or (
                "failed: the conditioned table has no future rows (data.horizon_weeks is 0?): "
                + outcome.value["nothing"]
            )
            continue
        _note_lifecycle(s, outcome.value)
        scored.append(pid)
    return sorted(scored)


@guarded
def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915
    parser = base_parser("score", __doc__)
    add_data_option(parser)
    parser.add_argument(
        "--as-of", type=parse_date, help="scoring date (default: data.as_of, else today)"
    )
    parser.add_argument(
        "--allow-stale", action="store_true", help="score with champions past the age limit"
    )
    parser.add_argument(
        "--workers", type=int, help="processes (default: scoring.workers; 0: all cores)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    settings = settings_from(args)
    folder = args.data or settings.path("conditioned")
    scoring_date = as_of_date(args.as_of, settings)
    out = settings.path("predictions", f"scoring_date={scoring_date}", "predictions.parquet")
    previous = _previous(out)  # before any work: an unreadable file stops the run here
    store = resolve_store(settings, local=args.local)
    source, manifest = _conditioned(folder)
    keys = tuple(settings.partition.keys)
    combos = scan(source, keys)
    changes = manifest.get("against_training", {}).get("class_changes") or {}
    champions = champions_of(store, settings, _candidates(combos, keys, changes))
    combos, routed, moved = _route(combos, changes, keys, champions)
    pids = sorted(set(partition_ids(combos, keys))) if len(combos) else []
    status, members = plan(
        pids, store, settings, scoring_date, args.allow_stale, champions=champions
    )
    blocks = make_blocks(pids, settings.scoring.block_size)
    block_of = {pid: block for block, ids in blocks.items() for pid in ids}
    workers = settings.scoring.workers if args.workers is None else args.workers
    backend = settings.scoring.backend  # local processes or Spark executors (docs/scale-out.md)
    scored_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with backends.staging(settings, backend) as stage:
        files = split(source, keys, block_of, Path(stage), moved)
        jobs = {
            block: (BlockJob(
                str(path), tuple(members.get(p, Member(p)) for p in blocks[block]), store, keys,
                str(scoring_date), scored_at, settings.data.min_history_weeks,
                settings.serving.history_weeks,
            ),)
            for block, path in files.items()
        }  # fmt: skip
        scoring = {b: [p for p in blocks[b] if p in members] for b in jobs}
        if workers == 0 and backend == "local":
            workers = auto_workers(len(jobs), settings.scoring.blocks_per_worker)
        outcomes = backends.run(score_block, jobs, backend=backend, settings=settings,
                                workers=workers)  # fmt: skip
        per = backends.per_partition(outcomes, scoring)
        # a block that failed whole (its worker died): its partitions again, one task each
        again = {p: (replace(jobs[b][0], members=(members[p],), name=f"{b}-{p}", snapshot=False),)
                 for b, o in outcomes.items() if not o.ok for p in scoring[b]}  # fmt: skip
        if again:
            log.warning("score: %d block(s) failed whole: their %d partition(s) again, one by one",
                        sum(not o.ok for o in outcomes.values()), len(again))  # fmt: skip
            retried = backends.run(score_block, again, backend=backend, settings=settings,
                                   workers=workers)  # fmt: skip
            per |= backends.per_partition(retried, {p: [p] for p in again})
        gone = (
            f"{NOTHING}: every series is discontinued (no sale in its last "
            f"{settings.data.discontinued_after_weeks} weeks)"
        )
        scored = collect(per, status, gone if manifest.get("future_rows", 1) else None)
        _note_kept(status, previous, scored)
        url = settings.scoring.sql_url or f"sqlite:///{settings.path('predictions.db').resolve()}"
        done = [jobs[b][0] for b, o in outcomes.items() if o.ok]
        done += [again[p][0] for p, o in (retried if again else {}).items() if o.ok]
        parts = [f for f in (forecasts_path(j.rows, j.name) for j in done) if f.exists()]
        written, sql, sql_ok = write_outputs(
            parts, scored, out, url=url, table=settings.scoring.sql_table,
            scoring_date=scoring_date, new_rows=sum(status[p]["rows"] for p in scored),
        )  # fmt: skip
        # the online API's features (docs/serving.md): latest history per series of this data
        _write_snapshot(
            files,
            snapshot_path(settings),
            settings,
            partitions=len(pids),
            keys=keys,
            changes=changes,
        )
    rows = [{"partition": p, **s} for p, s in status.items()]
    columns = ["partition", "model", "version", "kind", "age_days", "age_basis", "rows",
               "new_series", "unseen_series", "status"]  # fmt: skip
    header = (
        f"## Batch scoring {scoring_date}\n\nregistry: {redact(store.tracking_uri)} "
        f"({settings.env})  \npredictions: {written}  \nSQL: {sql}\n\n"
    )
    body = markdown_table(rows, columns) + lifecycle_section(status, routed)
    write_text(header + body, settings.path("reports", "scoring.md"))
    idle = [r for r in rows if r["status"].startswith(NOTHING)]
    bad = [r for r in rows if not r["status"].startswith(("scored", NOTHING))]
    for r in idle:
        log.warning("score: %s: %s", r["partition"], r["status"])
    for r in bad:
        log.error("score: %s: %s", r["partition"], r["status"])
    log.info("score: %d rows for %d partitions (%d not scored%s) -> %s; SQL %s",
             sum(status[p]["rows"] for p in scored), len(scored), len(bad),
             f", {len(idle)} with nothing to forecast" if idle else "", written, sql)  # fmt: skip
    return 1 if bad or not sql_ok else 0


def auto_workers(blocks: int, blocks_per_worker: int) -> int:
    """Local workers for ``blocks`` blocks when ``scoring.workers`` is 0: one per
    ``blocks_per_worker`` blocks, at least one (in this process), at most one per core."""
    return max(1, min(os.cpu_count() or 1, blocks // blocks_per_worker))


def write_outputs(
    parts: list[Path],
    scored: list[str],
    out: Path,
    *,
    url: str,
    table: str,
    scoring_date: dt.date,
    new_rows: int | None = None,
) -> tuple[str, str, bool]:
    """Write this run's partitions (their forecasts in the parquet files ``parts``) to the
    parquet file ``out`` and the SQL table, keeping every other partition's earlier rows.

    Returns:
        What was written to the parquet file and to SQL (one line each, for the report), and
        whether the SQL write succeeded (or had nothing to do).
    """
    if not scored or not parts:
        log.error("score: no partition scored: the predictions for %s are left as they were",
                  scoring_date)  # fmt: skip
        return (
            f"{out}: not written (no partition scored; an earlier file is left as it was)",
            f"table `{table}` in {redact(url)}: not written (no partition scored)",
            True,
        )
    done = pa.array(scored, pa.string())
    total = merge_parts(
        parts, out, keep=out, columns=PREDICTION_COLUMNS,
        dropped=lambda t: pc.is_in(pc.cast(t.column("partition"), pa.string()), value_set=done),
    )  # fmt: skip
    new = total if new_rows is None else new_rows
    written = f"{out}: {new} rows scored now, {total - new} kept"
    try:
        rows = write_sql_parts(parts, url, table, scoring_date, scored)
    except WarehouseError as exc:
        log.error("score: SQL predictions not written (the parquet output is): %s", exc)
        return written, f"table `{table}`: not written: {exc}", False
    return written, f"table `{table}` in {redact(url)}: {rows} rows replaced", True


def _conditioned(folder: Path) -> tuple[Path, dict]:
    """The conditioned table's path (not its rows) and its manifest."""
    if not (folder / TABLE).exists():
        missing = folder / TABLE
        raise FileNotFoundError(f"{missing} does not exist: run `manymodels condition` first")
    return folder / TABLE, read_json(folder / "manifest.json", step="condition")


def _previous(path: Path) -> pd.Series | None:
    """Per partition, the rows written earlier for this date (only that column is read).

    Raises:
        ConfigError: the file exists but cannot be read (it is left alone).
    """
    if not path.exists():
        return None
    try:
        column = pq.read_table(path, columns=["partition"]).column("partition")
    except Exception as exc:  # noqa: BLE001 (pyarrow raises several types)
        raise ConfigError(
            f"cannot read the earlier predictions {path} ({exc}): move it aside and re-run"
        ) from exc
    return column.to_pandas().astype(str).value_counts()


def _note_kept(status: dict, previous: pd.Series | None, scored: list[str]) -> None:
    """Say in each unscored partition's status how many earlier predictions it keeps."""
    if previous is None or previous.empty:
        return
    for pid, n in previous[~previous.index.isin(scored)].items():
        if pid in status:
            status[pid]["status"] += f" (kept {n} earlier predictions)"


def _candidates(combos: pd.DataFrame, keys: tuple[str, ...], changes: dict) -> list[str]:
    """The partitions of the data, and those a class-changed product may be routed back to."""
    if not len(combos):
        return []
    frames = [combos]
    if changes and "speed" in keys:
        back = {str(p): old for p, (old, _) in changes.items()}
        changed = combos[combos["product_id"].isin(back)]
        frames.append(changed.assign(speed=changed["product_id"].map(back)))
    return sorted(set(partition_ids(pd.concat(frames, ignore_index=True), keys)))


def _route(combos: pd.DataFrame, changes: dict, keys: tuple[str, ...], champions: dict):
    """Products whose class changed since training go back to the partition they were trained
    in when it has a champion (the manifest compared them with the training's membership).

    Returns:
        The distinct key x product rows after routing, the report's note per changed product,
        and ``{product: speed}`` for the routed ones (applied to the rows by ``split``).
    """
    if not changes or not len(combos):
        return combos, {}, {}
    after, notes = route_class_changes(combos, changes, keys, champions.__contains__)
    for product, note in notes.items():
        log.warning("score: product %s %s", product, note)
    moved = {}
    if "speed" in keys:
        changed = after["speed"].astype(str) != combos["speed"].astype(str)
        moved = dict(zip(after.loc[changed, "product_id"], after.loc[changed, "speed"],
                         strict=True))  # fmt: skip
    return after.drop_duplicates(ignore_index=True), notes, moved


def _write_snapshot(files: dict, path: Path, settings, *, partitions: int, keys, changes) -> None:
    """The serving snapshot from the blocks' parts (a block whose task failed: made here)."""
    history = settings.serving.history_weeks
    parts = []
    for rows in files.values():
        part = snapshot_part(rows)
        if not part.exists():
            split_rows = read_part(Path(rows))
            from manymodels.data.partition import split_partitions  # noqa: PLC0415

            frames = [snapshot_rows(p, f, history) for p, f in
                      split_partitions(split_rows, keys).items()]  # fmt: skip
            frame = pd.concat(frames, ignore_index=True)
            write_staged(pa.Table.from_pandas(frame, preserve_index=False), part)
        parts.append(part)
    counted = []  # per part: its series and last week with known units, as it is written
    if parts:
        total = merge_parts(parts, path, each=lambda t: counted.append(snapshot_counts(t)))
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame().to_parquet(path, index=False)
        total = 0
    series, last = 0, None
    for n, week in counted:
        series += n
        if week is not None:
            last = max(last, pd.Timestamp(week)) if last is not None else pd.Timestamp(week)
    write_manifest(
        path, rows=total, partitions=partitions, series=series, history_weeks=history,
        last_actual_week=None if last is None else f"{last:%F}",
        min_history_weeks=settings.data.min_history_weeks, keys=keys, class_changes=changes,
    )  # fmt: skip


def _note_lifecycle(s: dict, summary: dict) -> None:
    """Per partition: the kinds that forecast it, its new series and the series it never saw."""
    s["rows"] = summary["rows"]
    kinds = summary["kinds"]
    if len(kinds) > 1:
        s["kind"] = ", ".join(f"{k} ({n} rows)" for k, n in kinds.items())
    s["new_series"] = summary["new_series"]
    unseen = summary["unseen"]
    if unseen is None:
        s["unseen_series"] = "unknown (model saved without its series)"
        return
    s["unseen_series"] = len(unseen)
    s["unseen"] = unseen
    if unseen:
        log.warning("score: %s v%s never saw %d series: %s", s["model"], s["version"],
                    len(unseen), ", ".join(unseen[:10]))  # fmt: skip


def lifecycle_section(status: dict, routed: dict) -> str:
    """The report's lines on series the champions never saw and products that changed class."""
    lines = []
    for pid, s in status.items():
        if s.get("unseen"):
            more = ", ..." if len(s["unseen"]) > 20 else ""
            shown = ", ".join(s["unseen"][:20]) + more
            model = f"{s['model']} v{s['version']}"
            lines.append(f"- {pid}: {model} never saw {len(s['unseen'])} series: {shown}")
    lines += [f"- product {p}: {note}" for p, note in routed.items()]
    if not lines:
        return ""
    return (
        "\n\n### Lifecycle: series the champions never saw, class changes\n\n"
        + "\n".join(lines)
        + "\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())

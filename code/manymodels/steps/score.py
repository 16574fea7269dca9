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

The age counts from the champion's last validation: its training, or the last time the gate kept
it against a retrained challenger on fresh data (tag ``last_validated_at``); the report says
which.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from manymodels import registry
from manymodels.config import ConfigError
from manymodels.data.partition import split_partitions
from manymodels.io import write_parquet, write_text
from manymodels.monitoring.staleness import age_basis
from manymodels.parallel import run_partitions
from manymodels.redact import redact
from manymodels.report import markdown_table
from manymodels.scoring import (
    PREDICTION_COLUMNS,
    WarehouseError,
    merge_predictions,
    model_age_days,
    predict_future,
    write_sql,
)
from manymodels.serve.snapshot import snapshot_path, write_snapshot
from manymodels.steps import (
    add_data_option,
    as_of_date,
    base_parser,
    guarded,
    parse_date,
    settings_from,
    setup_logging,
)
from manymodels.steps.condition import read_conditioned

__all__ = ["collect", "main", "plan", "write_outputs"]

log = logging.getLogger(__name__)


def _score(frame: pd.DataFrame, store: registry.Store, name: str, version: str) -> pd.DataFrame:
    return predict_future(frame, registry.load(store, name, version=version))


def plan(parts: dict, store: registry.Store, settings, scoring_date: dt.date, allow_stale: bool):
    """Per partition: its champion, age and status; and the scoring tasks for the usable ones."""
    limit = settings.scoring.max_model_age_days
    status, tasks = {}, {}
    for pid, frame in parts.items():
        name = registry.model_name(settings, pid)
        champion = registry.alias_of(store, name, registry.CHAMPION)  # or its tag (Azure ML)
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
        status[pid] = {
            "model": name, "version": str(champion.version), "age_days": age, "age_basis": basis,
            "kind": champion.tags.get("model_kind", "?"),
            "status": ("scored (stale)" if stale else "scored") if usable else "stale: refused",
        }  # fmt: skip
        if usable:
            tasks[pid] = (frame, store, name, str(champion.version))
    return status, tasks


def collect(outcomes: dict, status: dict, scoring_date: dt.date) -> pd.DataFrame:
    """The predictions of every partition that scored, with their model; failures into status."""
    frames = []
    scored_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for pid, outcome in outcomes.items():
        s = status[pid]
        if not outcome.ok:
            s["status"] = f"failed: {redact(outcome.error)}"
            continue
        s["rows"] = len(outcome.value)
        frames.append(outcome.value.assign(
            partition=pid, model_name=s["model"], model_version=s["version"], model_kind=s["kind"],
            scoring_date=str(scoring_date), scored_at=scored_at,
        ))  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(PREDICTION_COLUMNS)]


@guarded
def main(argv: list[str] | None = None) -> int:
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
    store = registry.resolve_store(settings, local=args.local)
    table, _ = read_conditioned(folder)
    parts = split_partitions(table, settings.partition.keys)
    status, tasks = plan(parts, store, settings, scoring_date, args.allow_stale)
    workers = settings.scoring.workers if args.workers is None else args.workers
    predictions = collect(run_partitions(_score, tasks, workers), status, scoring_date)
    _note_kept(status, previous, sorted(set(predictions["partition"])))
    url = settings.scoring.sql_url or f"sqlite:///{settings.path('predictions.db').resolve()}"
    written, sql, sql_ok = write_outputs(
        predictions, previous, out, url=url, table=settings.scoring.sql_table,
        scoring_date=scoring_date,
    )  # fmt: skip
    # the online API's features (docs/serving.md): latest history per series of this data
    write_snapshot(parts, snapshot_path(settings), settings.serving.history_weeks)
    rows = [{"partition": p, **s} for p, s in status.items()]
    columns = ["partition", "model", "version", "kind", "age_days", "age_basis", "rows", "status"]
    header = (
        f"## Batch scoring {scoring_date}\n\nregistry: {redact(store.tracking_uri)} "
        f"({settings.env})  \npredictions: {written}  \nSQL: {sql}\n\n"
    )
    write_text(header + markdown_table(rows, columns), settings.path("reports", "scoring.md"))
    bad = [r for r in rows if not r["status"].startswith("scored")]
    for r in bad:
        log.error("score: %s: %s", r["partition"], r["status"])
    log.info("score: %d rows for %d partitions (%d not scored) -> %s; SQL %s",
             len(predictions), len(rows) - len(bad), len(bad), written, sql)  # fmt: skip
    return 1 if bad or not sql_ok else 0


def write_outputs(
    predictions: pd.DataFrame,
    previous: pd.DataFrame | None,
    out: Path,
    *,
    url: str,
    table: str,
    scoring_date: dt.date,
) -> tuple[str, str, bool]:
    """Write this run's partitions to the parquet file and the SQL table, keeping the others.

    Returns:
        What was written to the parquet file and to SQL (one line each, for the report), and
        whether the SQL write succeeded (or had nothing to do).
    """
    scored = sorted(set(predictions["partition"]))
    if not scored:
        log.error("score: no partition scored: the predictions for %s are left as they were",
                  scoring_date)  # fmt: skip
        return (
            f"{out}: not written (no partition scored; an earlier file is left as it was)",
            f"table `{table}` in {redact(url)}: not written (no partition scored)",
            True,
        )
    merged = merge_predictions(previous, predictions, scored)
    write_parquet(merged, out)
    written = f"{out}: {len(predictions)} rows scored now, {len(merged) - len(predictions)} kept"
    try:
        rows = write_sql(predictions, url, table, scoring_date, scored)
    except WarehouseError as exc:
        log.error("score: SQL predictions not written (the parquet output is): %s", exc)
        return written, f"table `{table}`: not written: {exc}", False
    return written, f"table `{table}` in {redact(url)}: {rows} rows replaced", True


def _previous(path) -> pd.DataFrame | None:
    """The predictions written earlier for this date, if any.

    Raises:
        ConfigError: the file exists but cannot be read (it is left alone).
    """
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 (pyarrow raises several types)
        raise ConfigError(
            f"cannot read the earlier predictions {path} ({exc}): move it aside and re-run"
        ) from exc


def _note_kept(status: dict, previous: pd.DataFrame | None, scored: list[str]) -> None:
    """Say in each unscored partition's status how many earlier predictions it keeps."""
    if previous is None or previous.empty:
        return
    counts = previous.loc[~previous["partition"].isin(scored), "partition"].value_counts()
    for pid, n in counts.items():
        if pid in status:
            status[pid]["status"] += f" (kept {n} earlier predictions)"


if __name__ == "__main__":
    raise SystemExit(main())

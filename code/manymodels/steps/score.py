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

from manymodels import backends, registry
from manymodels.config import ConfigError
from manymodels.data.partition import split_partitions
from manymodels.io import write_parquet, write_text
from manymodels.monitoring.staleness import age_basis
from manymodels.redact import redact
from manymodels.report import markdown_table
from manymodels.scoring import (
    PREDICTION_COLUMNS,
    WarehouseError,
    merge_predictions,
    model_age_days,
    predict_future,
    route_class_changes,
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

__all__ = ["collect", "lifecycle_section", "main", "plan", "write_outputs"]

log = logging.getLogger(__name__)


def _score(
    frame: pd.DataFrame, store: registry.Store, name: str, version: str, min_history: int = 0
) -> pd.DataFrame:
    return predict_future(frame, registry.load(store, name, version=version), min_history)


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
            min_history = settings.data.min_history_weeks
            tasks[pid] = (frame, store, name, str(champion.version), min_history)
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
        value = outcome.value
        s["rows"] = len(value)
        if "model_kind" not in value:  # a forecast without it: the version's tag
            value = value.assign(model_kind=s["kind"])
        _note_lifecycle(s, value)
        frames.append(value.assign(
            partition=pid, model_name=s["model"], model_version=s["version"],
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
    table, manifest = read_conditioned(folder)
    table, routed = _route(table, manifest, store, settings)
    parts = split_partitions(table, settings.partition.keys)
    status, tasks = plan(parts, store, settings, scoring_date, args.allow_stale)
    workers = settings.scoring.workers if args.workers is None else args.workers
    backend = settings.scoring.backend  # local processes or Spark executors (docs/scale-out.md)
    outcomes = backends.run(_score, tasks, backend=backend, settings=settings, workers=workers)
    predictions = collect(outcomes, status, scoring_date)
    _note_kept(status, previous, sorted(set(predictions["partition"])))
    url = settings.scoring.sql_url or f"sqlite:///{settings.path('predictions.db').resolve()}"
    written, sql, sql_ok = write_outputs(
        predictions, previous, out, url=url, table=settings.scoring.sql_table,
        scoring_date=scoring_date,
    )  # fmt: skip
    # the online API's features (docs/serving.md): latest history per series of this data
    write_snapshot(
        parts, snapshot_path(settings), settings.serving.history_weeks,
        min_history_weeks=settings.data.min_history_weeks, keys=settings.partition.keys,
        class_changes=manifest.get("against_training", {}).get("class_changes"),
    )  # fmt: skip
    rows = [{"partition": p, **s} for p, s in status.items()]
    columns = ["partition", "model", "version", "kind", "age_days", "age_basis", "rows",
               "new_series", "unseen_series", "status"]  # fmt: skip
    header = (
        f"## Batch scoring {scoring_date}\n\nregistry: {redact(store.tracking_uri)} "
        f"({settings.env})  \npredictions: {written}  \nSQL: {sql}\n\n"
    )
    body = markdown_table(rows, columns) + lifecycle_section(status, routed)
    write_text(header + body, settings.path("reports", "scoring.md"))
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


def _route(table: pd.DataFrame, manifest: dict, store: registry.Store, settings):
    """Products whose class changed since training go back to the partition they were trained
    in when it has a champion (the manifest compared them with the training's membership)."""
    changes = manifest.get("against_training", {}).get("class_changes") or {}
    cache: dict[str, bool] = {}

    def has_model(pid: str) -> bool:
        if pid not in cache:
            name = registry.model_name(settings, pid)
            cache[pid] = registry.get_alias(store, name, registry.CHAMPION) is not None
        return cache[pid]

    table, routed = route_class_changes(table, changes, settings.partition.keys, has_model)
    for product, note in routed.items():
        log.warning("score: product %s %s", product, note)
    return table, routed


def _note_lifecycle(s: dict, value: pd.DataFrame) -> None:
    """Per partition: the kinds that forecast it, its new series and the series it never saw."""
    kinds = value["model_kind"].value_counts()
    pairs = value["store_id"].astype(str) + "/" + value["product_id"].astype(str)
    if len(kinds) > 1:
        s["kind"] = ", ".join(f"{k} ({n} rows)" for k, n in kinds.items())
    new = value["model_kind"].astype(str).str.contains("new series", regex=False)
    s["new_series"] = int(pairs[new].nunique())
    if "seen" in value and value["seen"].notna().all():
        unseen = sorted(set(pairs[~value["seen"].astype(bool)]))
        s["unseen_series"] = len(unseen)
        s["unseen"] = unseen
        if unseen:
            log.warning("score: %s v%s never saw %d series: %s", s["model"], s["version"],
                        len(unseen), ", ".join(unseen[:10]))  # fmt: skip
    else:
        s["unseen_series"] = "unknown (model saved without its series)"


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

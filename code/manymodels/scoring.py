"""The pure core of batch scoring: forecasts for the future rows of one partition, model age
checks, merging a re-run into the earlier predictions, and an idempotent write of predictions to
a SQL table.

Nothing is lost on a re-run: only the partitions a run scored replace their rows (in the parquet
output and in SQL); a partition that fails now keeps what it had. A warehouse that cannot be
reached or whose driver is missing is a :class:`WarehouseError` naming the redacted URL and what
to do, never a traceback.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from manymodels.data.partition import partition_id
from manymodels.features import build_features
from manymodels.redact import redact

if TYPE_CHECKING:
    from manymodels.pyfunc import PackedModel

__all__ = [
    "PREDICTION_COLUMNS",
    "NothingToForecast",
    "WarehouseError",
    "merge_predictions",
    "model_age_days",
    "predict_future",
    "route_class_changes",
    "series_codes",
    "write_sql",
    "write_sql_parts",
]

# the PyPI package that provides a DBAPI module SQLAlchemy could not import
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "cx_Oracle": "oracledb",
}


class WarehouseError(RuntimeError):
    """The predictions could not be written to the SQL warehouse; the message says why."""


class NothingToForecast(ValueError):
    """A partition with history but no week after it. Conditioning gives every series future
    rows unless it is discontinued (no sale in its last ``data.discontinued_after_weeks``
    weeks), so in a table with future rows elsewhere each of the partition's series is; in a
    table with none at all, ``data.horizon_weeks`` is 0 (the score step tells them apart)."""


PREDICTION_COLUMNS = (
    "scoring_date",
    "partition",
    "region",
    "store_format",
    "speed",
    "store_id",
    "product_id",
    "week",
    "prediction",
    "p10",  # conformal prediction interval bounds and median (NaN for models without them)
    "p50",
    "p90",
    "model_name",
    "model_version",
    "model_kind",
    "scored_at",
)


INTERVAL_COLUMNS = ("p10", "p50", "p90")


NEW_SERIES_KIND = "baseline (new series)"


def predict_future(
    frame: pd.DataFrame,
    packed: PackedModel,
    min_history_weeks: int = 0,
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecasts for the rows of ``frame`` after its last week with known units.

    A series whose first sale is fewer than ``min_history_weeks`` weeks before the last known
    week is new: the baseline packed inside an ensemble forecasts it (``model_kind`` says
    ``baseline (new series)``); an older model without one forecasts it with the ensemble and
    says so. The column ``seen`` tells whether the model was trained on the series (NA when the
    model does not record its series).

    ``features``: ``frame``'s features when they were built already (a block's at once), else
    they are built here with the model's feature settings.

    Raises:
        NothingToForecast: the partition has history but no future rows.
        ValueError: it has no rows at all.
    """
    if features is None:
        features = build_features(frame, **packed.features)
    last_actual = frame.loc[frame["units"].notna(), "week"].max()
    if pd.isna(last_actual):
        future = features.iloc[:0]
    else:  # numpy comparisons: a block scores thousands of partitions through here
        later = features["week"].to_numpy() > last_actual.to_datetime64()
        future = features if later.all() else features[later]
    if future.empty:
        error = NothingToForecast if len(frame) and not pd.isna(last_actual) else ValueError
        raise error(f"partition {packed.partition}: no weeks after {last_actual:%F} to forecast")
    keys = ["region", "store_format", "speed", "store_id", "product_id", "week"]
    future = future.reset_index(drop=True)
    out = future[[k for k in keys if k in future.columns]].copy()
    forecast = packed.predict_frame(future)
    for column in ("prediction", *INTERVAL_COLUMNS):
        out[column] = forecast[column].to_numpy() if column in forecast else float("nan")
    kind = packed.kind
    out["model_kind"] = kind
    stores = out["store_id"].astype(str).to_numpy().astype(object)
    pair = stores + "/" + out["product_id"].astype(str).to_numpy().astype(object)
    young = _new_series(frame, last_actual, min_history_weeks)
    new = np.fromiter((p in young for p in pair), bool, len(pair)) if young else None
    fallback = getattr(packed, "fallback", None)  # models saved before carry none
    if new is not None and new.any() and kind != "baseline" and fallback is not None:
        backup = fallback.predict_frame(future[new])
        for column in ("prediction", *INTERVAL_COLUMNS):
            values = backup[column].to_numpy() if column in backup else float("nan")
            out.loc[new, column] = values
        out.loc[new, "model_kind"] = NEW_SERIES_KIND
    elif new is not None and new.any() and kind != "baseline":
        out.loc[new, "model_kind"] = f"{kind} (new series: no baseline in this model)"
    series = getattr(packed, "series", None)
    if series is None:
        out["seen"] = pd.NA
    else:
        known = set(series)
        out["seen"] = np.fromiter((p in known for p in pair), bool, len(pair))
    return out


def _new_series(frame: pd.DataFrame, last_actual, min_history_weeks: int) -> set[str]:
    """The "store/product" series whose first sale is under ``min_history_weeks`` weeks old."""
    if min_history_weeks <= 0:
        return set()
    sold = (frame["units"] > 0).to_numpy(dtype=bool, na_value=False)
    if not sold.any():
        return set()
    rows, labels = series_codes(
        frame["store_id"].to_numpy()[sold], frame["product_id"].to_numpy()[sold]
    )
    first = pd.Series(frame["week"].to_numpy()[sold]).groupby(rows).min()
    young = first.index[(first > last_actual - pd.Timedelta(weeks=min_history_weeks)).to_numpy()]
    return {labels[c] for c in young}


def series_codes(store_ids, product_ids) -> tuple[np.ndarray, list[str]]:
    """Each row's series as an integer code, and the ``"store/product"`` label of each code:
    the labels built once per series, not once per row (a block scores thousands of rows)."""
    stores, store_names = pd.factorize(np.asarray(store_ids).astype(str))
    products, product_names = pd.factorize(np.asarray(product_ids).astype(str))
    n = len(product_names)
    rows, pairs = pd.factorize(stores * n + products)
    return rows, [f"{store_names[c // n]}/{product_names[c % n]}" for c in pairs]


def route_class_changes(
    table: pd.DataFrame, changes: dict, keys: Iterable[str], has_model
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Send the products whose speed class changed since training back to the partition they
    were trained in, where that partition has a model.

    Args:
        table: the conditioned table (``speed`` per row).
        changes: ``{product: [trained class, class now]}`` (the manifest's ``against_training``).
        keys: the partition keys (routing applies only when ``speed`` is one).
        has_model: ``partition id -> bool``.

    Returns:
        The table with the routed products' ``speed`` set back, and per changed product what
        happened (for the report).
    """
    keys = list(keys)
    if not changes or "speed" not in keys:
        return table, {}
    table = table.copy()
    notes = {}
    for product, (old, new) in sorted(changes.items()):
        rows = table["product_id"].astype(str) == str(product)
        if not rows.any():
            continue
        targets = table.loc[rows, keys].assign(speed=old).drop_duplicates()
        pids = {partition_id(tuple(v)) for v in targets.itertuples(index=False)}
        missing = sorted(p for p in pids if not has_model(p))
        if missing:
            notes[str(product)] = (
                f"trained as {old}, now {new}: scored by the {new} model, which never saw it "
                f"(no model for {', '.join(missing)})"
            )
            continue
        table["speed"] = table["speed"].astype(object)
        table.loc[rows, "speed"] = old
        notes[str(product)] = (
            f"trained as {old}, now {new}: scored by the {old} model it was trained in"
        )
    return table, notes


def model_age_days(trained_at: str, scoring_date: dt.date) -> int:
    """Days between a model's training (an ISO timestamp tag) and the scoring date."""
    return (scoring_date - dt.datetime.fromisoformat(trained_at).date()).days


def merge_predictions(
    previous: pd.DataFrame | None, new: pd.DataFrame, scored: Iterable[str]
) -> pd.DataFrame:
    """This run's predictions plus the earlier rows of every partition it did not score.

    Args:
        previous: the predictions written earlier for the same scoring date, or None.
        new: this run's predictions.
        scored: the partitions this run scored (their earlier rows are replaced).
    """
    if previous is None or previous.empty:
        return new.reset_index(drop=True)
    kept = previous[~previous["partition"].isin(set(scored))]
    frames = [f for f in (kept, new) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else new


def write_sql(
    predictions: pd.DataFrame,
    url: str,
    table: str,
    scoring_date: dt.date,
    partitions: Iterable[str] | None = None,
) -> int:
    """Replace the rows of ``partitions`` (default: all) for ``scoring_date`` in one transaction.

    Returns:
        The number of rows written.

    Raises:
        WarehouseError: the URL is malformed, its driver is not installed, the database cannot
            be reached, or the write failed; the message carries the redacted URL.
    """
    parts = sorted(set(predictions["partition"]) if partitions is None else set(partitions))
    return _write_sql_frames(lambda: iter([predictions]), url, table, scoring_date, parts)


def write_sql_parts(
    files: Iterable[str | Path], url: str, table: str, scoring_date: dt.date,
    partitions: Iterable[str],
) -> int:  # fmt: skip
    """:func:`write_sql` from parquet files read one at a time (memory: one file), in one
    transaction: the rows of ``partitions`` for ``scoring_date`` are replaced, or nothing is."""
    files = list(files)
    return _write_sql_frames(
        lambda: (pd.read_parquet(f) for f in files), url, table, scoring_date, sorted(partitions)
    )


def _write_sql_frames(frames, url: str, table: str, scoring_date: dt.date, parts: list) -> int:
    try:
        engine = sa.create_engine(url)
    except sa.exc.NoSuchModuleError as exc:
        scheme = url.split("://", 1)[0]
        raise WarehouseError(
            f"{redact(url)}: {scheme!r} is not a SQLAlchemy dialect installed here: check the "
            "URL's scheme (e.g. postgresql+psycopg://user@host/db) or install its dialect"
        ) from exc
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise WarehouseError(
            f"{redact(url)}: the database driver {module!r} is not installed: "
            f"pip install {package} (or choose an installed driver in the URL)"
        ) from exc
    except sa.exc.ArgumentError as exc:
        raise WarehouseError(f"{redact(url)} is not a valid SQLAlchemy URL: {exc}") from exc
    try:
        _connect(engine, url)
        with engine.begin() as conn:
            if sa.inspect(conn).has_table(table):
                target = sa.Table(table, sa.MetaData(), autoload_with=conn)
                conn.execute(
                    target.delete().where(
                        target.c.scoring_date == str(scoring_date),
                        target.c.partition.in_(parts),
                    )
                )
            rows = 0
            for predictions in frames():
                frame = predictions.assign(week=predictions["week"].dt.strftime("%Y-%m-%d"))
                method = _executemany if conn.dialect.name == "sqlite" else None
                frame.to_sql(table, conn, if_exists="append", index=False, method=method)
                rows += len(frame)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:
        raise WarehouseError(
            f"writing table {table!r} in {redact(url)} failed: {_reason(exc)}"
        ) from exc
    finally:
        engine.dispose()
    return rows


def _executemany(pd_table, conn, keys: list[str], data_iter) -> int:
    """pandas' insert of a frame's rows (``data_iter``: its rows as pandas converts them, NaN as
    None) handed to the driver's own ``executemany`` in one call, without SQLAlchemy's per-row
    parameter handling (800,000 rows into SQLite: ~45 CPU-s through SQLAlchemy's executemany,
    a few through the driver's). The same statement, the same values."""
    compiled = pd_table.table.insert().compile(dialect=conn.dialect)
    if compiled.positional:
        where = [keys.index(name) for name in compiled.positiontup]
        params = [tuple(row[i] for i in where) for row in data_iter]
    else:
        params = [dict(zip(keys, row, strict=True)) for row in data_iter]
    if params:
        conn.exec_driver_sql(str(compiled), params)
    return len(params)


def _connect(engine: sa.Engine, url: str) -> None:
    """Open and close one connection, so an unreachable database is told apart from a bad write."""
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        raise WarehouseError(
            f"cannot reach {redact(url)}: {_reason(exc)}; check that the database is running "
            "and reachable from here, and the user's credentials"
        ) from exc


def _reason(exc: Exception) -> str:
    """The driver's own first line, without SQLAlchemy's SQL echo and links (redacted)."""
    orig = getattr(exc, "orig", None) or exc
    return redact(str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__)

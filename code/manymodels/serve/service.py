"""What the API does, without the web layer: find each series' partition, get its model from the
cache, build features (from the snapshot, or the request's own rows) and predict.

Series lifecycle follows batch scoring (:mod:`manymodels.serve.lifecycle`): a new series is
answered by the baseline packed in its ensemble, and a product whose speed class changed since
training by the partition it was trained in; each answer says which model kind answered.

Errors are :class:`ServeError` with the HTTP status they mean, so the web layer only maps them.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from manymodels.features import COVARIATES, KEYS, build_features
from manymodels.pyfunc import PackedModel
from manymodels.redact import redact
from manymodels.scoring import NEW_SERIES_KIND
from manymodels.serve.cache import ModelCache, ModelNotFound, RegistryUnavailable
from manymodels.serve.lifecycle import forecast_rows, new_rows, reroute, trained_partition
from manymodels.serve.metrics import Metrics
from manymodels.serve.schemas import (
    ForecastRequest,
    ForecastResponse,
    ModelInfo,
    SeriesForecast,
    SeriesRequest,
    WeekForecast,
)
from manymodels.serve.snapshot import Snapshot, SnapshotError

__all__ = ["NeedsWork", "ServeError", "ServedModel", "Service"]

log = logging.getLogger(__name__)


class NeedsWork(Exception):
    """Raised by ``forecast(cached_only=True)``: answering needs a load or a model run."""


class ServeError(Exception):
    """An error the API answers with ``status`` and ``detail`` (and ``headers``)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


@dataclass
class ServedModel:
    """A loaded model plus the forecasts of its partition's snapshot series.

    The model predicts all the snapshot's future rows of its partition once, when it is loaded
    (one vectorised call); a request that names only keys is then answered from these rows,
    and one that carries its own rows runs the model on them. Both are this version's forecasts
    of the same features (the snapshot is fixed until a newer one replaces the whole cache).
    """

    packed: PackedModel
    future: pd.DataFrame | None = None  # week, forecast columns, kind: after the last actual week
    rows: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    snapshot: Snapshot | None = None  # the snapshot these forecasts come from

    @property
    def horizon(self) -> int:
        return int(self.packed.features.get("horizon_weeks", 4))


def future_rows(features: pd.DataFrame, last_actual) -> pd.DataFrame:
    return features[features["week"] > last_actual].reset_index(drop=True)


class Service:
    """The online forecaster: snapshot + model cache + prediction.

    Args:
        snapshot_path: the feature snapshot written by batch scoring.
        resolve, load: see :class:`~manymodels.serve.cache.ModelCache` (``load`` returns a
            :class:`PackedModel`).
        model_name: partition id -> registered model name.
        settings: the ``serving`` section.
        ping: () -> None, raises when the registry is unreachable (for /ready).
    """

    def __init__(self, snapshot_path, *, resolve, load, model_name, settings, ping, metrics=None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.model_name = model_name
        self.snapshot_path = Path(snapshot_path)
        self.snapshot: Snapshot | None = None
        self.snapshot_error = ""
        self._ping = ping
        self._checked = 0.0
        self._lock = threading.Lock()
        self.cache = ModelCache(
            resolve,
            lambda name, version: self._prepare(load(name, version)),
            _size,
            max_models=settings.max_models,
            max_bytes=int(settings.max_model_mb * 2**20),
            ttl_s=settings.alias_ttl_s,
            metrics=self.metrics,
        )
        self.metrics.describe("snapshot_series", "gauge", "Series in the loaded feature snapshot.")
        self.metrics.describe("snapshot_loads_total", "counter", "Feature snapshots loaded.")
        self.refresh_snapshot(force=True)

    # -- the snapshot ----------------------------------------------------------------------
    def refresh_snapshot(self, force: bool = False) -> None:
        """Load the snapshot when it changed on disk (looked at every ``snapshot_check_s``)."""
        now = time.monotonic()
        if not force and now - self._checked < self.settings.snapshot_check_s:
            return
        with self._lock:
            if not force and now - self._checked < self.settings.snapshot_check_s:
                return
            self._checked = now
            try:
                mtime = self.snapshot_path.stat().st_mtime
            except OSError:
                mtime = None
            if self.snapshot is not None and mtime == self.snapshot.mtime:
                return
            try:
                snapshot = Snapshot(self.snapshot_path)
            except SnapshotError as exc:
                self.snapshot_error = str(exc)
                log.warning(
                    "serve: %s%s", exc, " (keeping the loaded one)" if self.snapshot else ""
                )
                return
            self.snapshot, self.snapshot_error = snapshot, ""
            self.cache.clear()  # cached feature rows belong to the old snapshot
            self.metrics.inc("snapshot_loads_total")
            self.metrics.set("snapshot_series", snapshot.series_count)
            log.info(
                "serve: snapshot %s: %d series in %d partitions",
                self.snapshot_path,
                snapshot.series_count,
                len(snapshot.parts),
            )

    def _snapshot_due(self) -> bool:
        return time.monotonic() - self._checked >= self.settings.snapshot_check_s

    def ready(self) -> dict[str, str]:
        """Problems that make the service not ready (empty: ready)."""
        problems = {}
        if self.snapshot is None:
            problems["snapshot"] = self.snapshot_error or "not loaded"
        try:
            self._ping()
        except Exception as exc:
            problems["registry"] = f"unreachable: {type(exc).__name__}: {redact(str(exc))[:300]}"
        return problems

    def _prepare(self, packed: PackedModel) -> ServedModel:
        snapshot = self.snapshot
        served = ServedModel(packed, snapshot=snapshot)
        if snapshot is not None and packed.partition in snapshot.parts:
            frame = snapshot.parts[packed.partition]
            features = build_features(frame, **packed.features)
            future = future_rows(features, frame.loc[frame["units"].notna(), "week"].max())
            new = new_rows(future, frame, snapshot.min_history_weeks)
            served.future = forecast_rows(packed, future, new)
            groups = future.groupby(list(KEYS), observed=True).indices
            served.rows = {(str(s), str(p)): idx for (s, p), idx in groups.items()}
        return served

    # -- forecasts -------------------------------------------------------------------------
    def forecast(self, request: ForecastRequest, cached_only: bool = False) -> ForecastResponse:
        """Forecasts for every series of ``request``.

        ``cached_only``: answer only from memory (no registry call, no model run, no snapshot
        load), else raise :class:`NeedsWork`; the API tries that first on its event loop and
        hands the request to a worker thread when it is raised.
        """
        if len(request.series) > self.settings.max_series:
            raise ServeError(
                422,
                f"{len(request.series)} series in one request: the limit is "
                f"{self.settings.max_series} (serving.max_series); split it",
            )
        if cached_only and self._snapshot_due():
            raise NeedsWork
        self.refresh_snapshot()
        alias = request.alias or self.settings.alias
        out = []
        for item in request.series:
            pid, own, otherwise = self._partition(item)
            if cached_only and own:
                raise NeedsWork
            try:
                entry = self._model(pid, alias, cached_only)
            except ServeError as exc:  # the partition it was trained in has no model
                if exc.status != 404 or otherwise is None:
                    raise
                pid = otherwise
                entry = self._model(pid, alias, cached_only)
            served: ServedModel = entry.value
            if request.weeks > served.horizon:
                raise ServeError(
                    422,
                    f"weeks={request.weeks} exceeds the horizon of "
                    f"{entry.name} v{entry.version} ({served.horizon} weeks)",
                )
            future = self._forecasts(item, served, own)
            if len(future) < request.weeks:
                raise ServeError(
                    422,
                    f"series store_id={item.store_id} product_id="
                    f"{item.product_id} has {len(future)} future week(s) with "
                    f"covariates, {request.weeks} wanted: send them in 'future'",
                )
            future = future.iloc[: request.weeks]
            kind = ", ".join(dict.fromkeys(future["kind"].astype(str))) or served.packed.kind
            info = ModelInfo(
                name=entry.name,
                version=entry.version,
                alias=alias,
                stale=entry.stale,
                kind=kind,
                fallback=kind == NEW_SERIES_KIND,
            )
            self.metrics.inc("series_forecast_total", answer=_answer(kind, served.packed.kind))
            if entry.stale:
                self.metrics.inc("stale_series_forecast_total")
            out.append(
                SeriesForecast(
                    store_id=item.store_id,
                    product_id=item.product_id,
                    partition=pid,
                    source="request" if own else "snapshot",
                    model=info,
                    class_change=self._class_note(pid, item.product_id),
                    forecasts=_weeks(future),
                )
            )
        written = self.snapshot.manifest.get("written_at") if self.snapshot else None
        return ForecastResponse(forecasts=out, snapshot_written_at=written)

    def _partition(self, item: SeriesRequest) -> tuple[str, bool, str | None]:
        """The series' partition id, whether the request carries its own rows, and the
        partition to answer with when the first has no model (a class-changed product sent back
        to the partition it was trained in falls back to the one of its class now)."""
        own = bool(item.history or item.future)
        known = (
            self.snapshot.partition_of(item.store_id, item.product_id) if self.snapshot else None
        )
        if known is not None:
            named = item.partition
            if named is not None and named != known and self._trained_in(named, item) != known:
                raise ServeError(
                    422,
                    f"series store_id={item.store_id} product_id="
                    f"{item.product_id} belongs to partition {known!r}, "
                    f"not {item.partition!r}",
                )
            return known, own, None
        if self.snapshot is None and not (item.partition and item.history):
            raise ServeError(
                503,
                f"no feature snapshot loaded ({self.snapshot_error}): only "
                "requests with partition and history can be answered",
                {"Retry-After": str(self.settings.retry_after_s)},
            )
        if item.partition is None or not item.history:
            raise ServeError(
                404,
                f"unknown series store_id={item.store_id} product_id="
                f"{item.product_id}: it is not in the feature snapshot; send its "
                "partition and history to forecast it anyway",
            )
        trained = self._trained_in(item.partition, item)
        if trained is not None:  # as batch scoring routes it, when that partition has a model
            return trained, True, item.partition
        return item.partition, True, None

    def _trained_in(self, pid: str, item: SeriesRequest) -> str | None:
        """The partition a class-changed product was trained in, for ``pid`` of its class now."""
        if self.snapshot is None:
            return None
        changes, keys = self.snapshot.class_changes, self.snapshot.keys
        return trained_partition(pid, item.product_id, changes, keys)

    def _class_note(self, pid: str, product_id: str) -> str | None:
        """What the answer did about a product whose class changed since training (None: none)."""
        if self.snapshot is None or not self.snapshot.class_changes:
            return None
        changes, keys = self.snapshot.class_changes, self.snapshot.keys
        change = changes.get(str(product_id))
        if reroute(pid, product_id, changes, keys) is not None:
            return f"trained as {change[0]}, now {change[1]}: answered by the {change[0]} model"
        trained = trained_partition(pid, product_id, changes, keys)
        if trained is not None:
            return (
                f"trained as {change[0]}, now {change[1]}: answered by the {change[1]} model, "
                f"which never saw it (no model for {trained})"
            )
        return None

    def _model(self, pid: str, alias: str, cached_only: bool = False):
        name = self.model_name(pid)
        if cached_only:
            entry = self.cache.peek(name, alias)
            if entry is None or entry.value.snapshot is not self.snapshot:
                raise NeedsWork
            return entry
        try:
            entry = self.cache.get(name, alias)
            if entry.value.snapshot is not self.snapshot:  # loaded while a new one came in
                self.cache.discard(name, alias)
                entry = self.cache.get(name, alias)
            return entry
        except ModelNotFound as exc:
            raise ServeError(404, f"unknown partition {pid!r}: {exc}") from exc
        except RegistryUnavailable as exc:
            retry = {"Retry-After": str(self.settings.retry_after_s)}
            raise ServeError(503, str(exc), retry) from exc

    def _forecasts(self, item: SeriesRequest, served: ServedModel, own: bool) -> pd.DataFrame:
        if not own:
            idx = served.rows.get((item.store_id, item.product_id))
            return served.future.iloc[idx] if idx is not None else served.future.iloc[:0]
        base = self.snapshot.series(item.store_id, item.product_id) if self.snapshot else None
        frame = _merge(base, item, dict(served.packed.features.get("covariates") or COVARIATES))
        if base is not None and "first_sale" in base and len(base):
            frame = frame.assign(first_sale=base["first_sale"].iloc[0])
        try:
            features = build_features(frame, **served.packed.features)
        except ValueError as exc:
            raise ServeError(
                422, f"series store_id={item.store_id} product_id={item.product_id}: {exc}"
            ) from exc
        last = frame.loc[frame["units"].notna(), "week"].max()
        future = future_rows(features, last)
        min_history = self.snapshot.min_history_weeks if self.snapshot else 0
        return forecast_rows(served.packed, future, new_rows(future, frame, min_history))


def _merge(base: pd.DataFrame | None, item: SeriesRequest, covariates: dict) -> pd.DataFrame:
    """The snapshot rows of a series with the request's rows on top: a value the request gives
    wins, one it leaves out comes from the snapshot's row for that week. ``covariates`` are the
    model's (``{name: mode}``); those known in advance must be there for every week."""
    given = pd.DataFrame([r.model_dump() for r in (*item.history, *item.future)])
    given = given.assign(week=pd.to_datetime(given["week"])).drop_duplicates("week", keep="last")
    store, product = item.store_id, item.product_id
    if base is not None and len(base):
        columns = [c for c in ("units", *covariates) if c in base.columns]
        merged = given.set_index("week").combine_first(base.set_index("week")[columns])
        future = pd.to_datetime([r.week for r in item.future])
        merged.loc[merged.index.isin(future), "units"] = np.nan
        given = merged.rename_axis("week").reset_index()
        store, product = base["store_id"].iloc[0], base["product_id"].iloc[0]
    for name in covariates:
        if name not in given.columns:
            given[name] = np.nan
    known = [c for c, mode in covariates.items() if mode == "known"]
    missing = [c for c in known if given[c].isna().any()]
    if missing:
        weeks = given.loc[given[missing].isna().any(axis=1), "week"].dt.strftime("%F").tolist()
        raise ServeError(
            422,
            f"series store_id={item.store_id} product_id={item.product_id}: "
            f"covariate(s) {missing} missing for week(s) {weeks[:5]}",
        )
    return given.assign(store_id=store, product_id=product).sort_values("week")


def _weeks(forecasts: pd.DataFrame) -> list[WeekForecast]:
    lower = forecasts["lower"] if "lower" in forecasts else [None] * len(forecasts)
    upper = forecasts["upper"] if "upper" in forecasts else [None] * len(forecasts)
    return [
        WeekForecast(week=w.date(), prediction=float(p), lower=_bound(lo), upper=_bound(up))
        for w, p, lo, up in zip(
            forecasts["week"], forecasts["prediction"], lower, upper, strict=True
        )
    ]


def _size(served: ServedModel) -> int:
    """Estimated bytes: the pickled model plus its feature rows."""
    frame = 0 if served.future is None else int(served.future.memory_usage(deep=True).sum())
    return len(pickle.dumps(served.packed, protocol=pickle.HIGHEST_PROTOCOL)) + frame


def _bound(value) -> float | None:
    """An interval bound, None where the model has none (NaN)."""
    return None if value is None or pd.isna(value) else float(value)


def _answer(kind: str, model_kind: str) -> str:
    """What answered a series, for ``series_forecast_total{answer}``: its partition's model, the
    baseline the gate kept as champion, the packed baseline of a new series, or a model with no
    baseline packed for a new series (saved by older code)."""
    if kind == NEW_SERIES_KIND:
        return "new_series_baseline"
    if "new series" in kind:
        return "new_series_no_baseline"
    return "baseline_champion" if model_kind == "baseline" else "model"

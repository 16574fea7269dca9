"""Typed, frozen settings parsed once from ``pipelines/*.yaml`` plus an environment overlay.

Each YAML file under the config folder owns its own top-level sections (a section defined in two
files is an error). ``pipelines/env/<env>.yaml`` then overrides any key, and ``--set a.b=value``
overrides from the command line win over both. Secrets never live here: MLflow URIs and
credentials come from environment variables (see :mod:`manymodels.registry`).

The frozen dataclasses below are the schema; pydantic validates the merged YAML against them
(wrong types, ranges, choices, unknown keys) and every error names the key's dotted path and
the file or ``--set`` it came from. To add a setting, add a field with a default to a dataclass
(or a new dataclass section to :class:`Settings`); use ``Literal[...]`` for choices and the
``Count``/``NonNegativeInt``/``Share``/... types (or ``Annotated[int, Field(ge=1)]``) for ranges.
Nothing else is needed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import Field

from manymodels.redact import redact

__all__ = [
    "ConfigError",
    "CovariateSettings",
    "DataSettings",
    "GateOverride",
    "GateSettings",
    "MlflowSettings",
    "MockSettings",
    "PartitionSettings",
    "ServingSettings",
    "Settings",
    "SourceSettings",
    "SparkSettings",
    "load_settings",
    "store_uri",
]

ENVIRONMENTS = ("dev", "prod")

# Field types with their checks (pydantic reads them; the dataclasses stay plain). Whole numbers
# and flags are strict: ``true`` is not 1, ``"yes"`` or 1 is not a flag, 2.5 is not a count.
Count = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
Flag = Annotated[bool, Field(strict=True)]
Share = Annotated[float, Field(ge=0, le=1)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class ConfigError(ValueError):
    """A settings file or override is wrong; the message names the file and key.

    The message is redacted: a bad ``--set scoring.sql_url=...`` must not put a password in a log.
    """

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


@dataclass(frozen=True)
class ProjectSettings:
    name: str = "manymodels"
    workdir: str = "work"


@dataclass(frozen=True)
class MockSettings:
    regions: Count = 14
    stores_per_region: Count = 4
    products: Count = 20
    start: dt.date = dt.date(2017, 1, 2)
    weeks: NonNegativeInt = 0
    forecast_weeks: NonNegativeInt = 4
    seed: NonNegativeInt = 42


@dataclass(frozen=True)
class DataSettings:
    horizon_weeks: NonNegativeInt = 4
    as_of: str = ""
    earliest_week: dt.date = dt.date(2000, 1, 1)
    max_units: PositiveFloat = 1_000_000
    max_age_days: NonNegativeInt = 30
    max_missing_week_share: Share = 0.0
    # the data contract (pipelines/data.yaml; docs/bring-your-own-data.md)
    uri: str = ""  # where relative source paths live; "" = <workdir>/raw; MANYMODELS_DATA_URI wins
    week_starts: Weekday = "monday"  # the first day of a week in the standard table
    discontinued_after_weeks: Count = 26  # a series with no sale for this long is not forecast
    min_history_weeks: NonNegativeInt = 26  # newer series are reported as new
    # a week in which a store reported nothing at all: "missing" (an export gap, validate judges
    # it) or "zero" (sparse data such as order lines, where no row means no sale)
    unreported_weeks: Literal["missing", "zero"] = "missing"
    store_formats: dict[str, str] = field(default_factory=dict)  # your format -> model format
    allow_mock: Flag = False  # mock data with a real MLflow store (tests only; see condition)
    default_region: str = "all"  # when no source gives a store's region
    default_store_format: str = "all"  # when no source gives a store's format


@dataclass(frozen=True)
class CovariateSettings:
    """One numeric covariate a source gives; its name becomes a feature column."""

    name: str = ""
    column: str = ""  # the source's column; "" = ``name``
    known_in_advance: Flag = False  # calendar, events, planned prices: true; weather: false
    unknown_as: Literal["lag", "climatology"] = (
        "lag"  # when not known in advance: lag (by the horizon) | climatology
    )
    agg: Literal["mean", "sum", "max", "min", "last"] = (
        "mean"  # rows of one week (daily data): mean | sum | max | min | last
    )
    fill: float | None = None  # value where the source has no row; None: validate reports it
    min: float | None = None  # validate's range for the values
    max: float | None = None


@dataclass(frozen=True)
class SourceSettings:
    """One raw source (``sources:`` in ``pipelines/data.yaml``): where, what shape, which columns.

    ``kind`` is ``sales`` (required, one), ``returns``, ``stores``, ``products``, ``events`` or
    ``covariates``. ``columns`` maps the standard names (store_id, product_id, date, quantity,
    region, store_format, zip_code, category, scope) to the source's column names.
    """

    name: str = ""
    kind: Literal["sales", "returns", "stores", "products", "events", "covariates"] = "covariates"
    path: str = (
        ""  # relative to data.uri, an absolute path or an fsspec URL (s3://, abfs://, gs://)
    )
    format: Literal["", "csv", "parquet", "jsonl", "json", "yaml", "excel"] = (
        ""  # csv | parquet | jsonl | json | yaml | excel; "" = from the extension
    )
    records: str = ""  # json/yaml: the key holding the list of rows
    sheet: str = ""  # excel: the sheet ("" = the first)
    columns: dict[str, str] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ()  # strptime formats tried in order; () = ISO dates
    frequency: Literal["weekly", "daily"] = (
        "weekly"  # weekly | daily (daily rows are summed/aggregated to weeks)
    )
    week_date: Literal["start", "end"] = (
        "start"  # weekly dates name the week's first day (start) or last (end)
    )
    quantity_scale: PositiveFloat = 1.0  # multiplies the quantity (e.g. 0.001 for thousands)
    thousands: str = ","  # thousands separator stripped from text quantities
    # rows with the same key and date: "error" (exact repeats are dropped as re-sent rows, different
    # values are an error) or "sum" (the rows are transactions or order lines: they add up)
    duplicates: Literal["error", "sum"] = "error"
    # sales with quantities below zero: "error", or "net" (the export books returns as negative
    # sales: they are netted within their week, and a week whose returns exceed its sales is
    # zero demand, counted in the manifest)
    negative_quantities: Literal["error", "net"] = "error"
    covariates: tuple[CovariateSettings, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # passed to the fsspec filesystem


@dataclass(frozen=True)
class PartitionSettings:
    keys: Annotated[tuple[str, ...], Field(min_length=1)] = ("region", "store_format", "speed")
    slow_zero_share: Share = 0.3


@dataclass(frozen=True)
class StoreSettings:
    tracking_uri: str = ""
    registry_uri: str = ""


@dataclass(frozen=True)
class MlflowSettings:
    experiment: str = "manymodels"
    model_prefix: str = "demand"
    dev: StoreSettings = field(default_factory=StoreSettings)
    prod: StoreSettings = field(default_factory=StoreSettings)
    # Unity Catalog (databricks-uc registry) names are <catalog>.<schema>.<model>: see platforms.py
    catalog: str = ""
    schema: str = ""
    # a sqlite store in WAL mode with synchronous=NORMAL: commits wait on no fsync; the file on a
    # local disk only, the last commits lost on a power cut (manymodels.stores, docs/scale-out.md)
    sqlite_wal: Flag = False


@dataclass(frozen=True)
class SplitSettings:
    validation_weeks: Count = 8
    test_weeks: Count = 8


@dataclass(frozen=True)
class BacktestSettings:
    """Rolling-origin backtest: ``origins`` windows of ``split.test_weeks``, ``step_weeks`` apart.

    Origin 1 ends at the last week with known units; origin ``k`` ends ``(k - 1) * step_weeks``
    earlier. ``origins: 1`` is the single held-out window of earlier versions.
    """

    origins: Count = 2
    step_weeks: Count = 8


@dataclass(frozen=True)
class IntervalSettings:
    """Conformal prediction intervals from the backtest residuals (``coverage`` = P90 - P10)."""

    coverage: Annotated[float, Field(gt=0, lt=1)] = 0.8


@dataclass(frozen=True)
class FeatureSettings:
    lags: tuple[NonNegativeInt, ...] = (0, 1, 2, 3, 48)
    rolling_windows: tuple[Count, ...] = (4, 13)


@dataclass(frozen=True)
class LassoSettings:
    alpha: NonNegativeFloat = 0.003


@dataclass(frozen=True)
class NNSettings:
    epochs: Count = 30
    batch_size: Count = 1024
    learning_rate: PositiveFloat = 0.01
    hidden_units: Count = 32
    embedding_dim: Count = 4
    patience: Count = 5
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"
    loss: Literal["mse", "poisson"] = "poisson"  # on each row's sales scale
    scale_feature: str = "rmean_13"  # poisson: the rolling mean giving a row's level; "": one


@dataclass(frozen=True)
class IntermittentSettings:
    """The ``intermittent`` member (TSB / Croston / SBA per series, see models/intermittent.py)."""

    method: Literal["tsb", "croston", "sba"] = "tsb"
    alpha: Annotated[float, Field(gt=0, le=1)] = 0.1
    beta: Annotated[float, Field(gt=0, le=1)] = 0.1


@dataclass(frozen=True)
class BoostingSettings:
    """The ``gbm`` member (HistGradientBoostingRegressor, Poisson, see models/boosting.py)."""

    max_iter: Count = 150
    learning_rate: PositiveFloat = 0.08
    max_leaf_nodes: Count = 15
    min_samples_leaf: Count = 40
    l2_regularization: NonNegativeFloat = 1.0
    scale_feature: str = "rmean_13"


@dataclass(frozen=True)
class FourierSettings:
    """The ``fourier`` (Lasso) and ``glm`` (Poisson) members: linear models with per-product
    Fourier seasonality and event responses (see models/fourier.py)."""

    harmonics: NonNegativeInt = 2
    by: str = "product_id"  # the column whose levels get their own terms ("": none)
    # covariates with a response per level; "known": every covariate known in advance
    interact: tuple[str, ...] = ("known",)
    lasso_alpha: NonNegativeFloat = 0.003
    poisson_alpha: NonNegativeFloat = 0.001


@dataclass(frozen=True)
class LevelSettings:
    """The ``level`` member: ``fourier`` times each series' level from its recent residuals
    (see models/level.py)."""

    halflife_weeks: NonNegativeFloat = 26.0  # a residual this much older counts half (0: alike)
    shrinkage: NonNegativeFloat = 4.0  # as if this many more weeks had a residual of zero


Weighting = Literal["nnls", "inverse_error", "equal", "wape", "mape", "mape_wape"]


def _key_match(key: str, value: str, where: dict[str, str], keys: dict[str, str]) -> bool:
    """Whether partition key values ``keys`` have ``key`` = ``value`` and every ``where`` pair
    (the test of an ensemble override and of a gate override alike)."""
    return all(keys.get(k) == v for k, v in {key: value, **where}.items())


@dataclass(frozen=True)
class MemberOverride:
    """Other ensemble members for the partitions whose key ``key`` equals ``value`` and whose
    keys in ``where`` (if any) have those values too, e.g. ``{key: speed, value: slow, where:
    {store_format: small}}``."""

    key: str = "speed"
    value: str = "slow"
    members: tuple[str, ...] = ()  # empty: training.ensemble.members
    weighting: Weighting | None = None  # None: training.ensemble.weighting
    where: dict[str, str] = field(default_factory=dict)

    def matches(self, keys: dict[str, str]) -> bool:
        """Whether a partition with these key values is one this override is for."""
        return _key_match(self.key, self.value, self.where, keys)


@dataclass(frozen=True)
class EnsembleSettings:
    weighting: Weighting = "nnls"
    members: tuple[str, ...] = ("lasso", "nn")
    overrides: tuple[MemberOverride, ...] = ()  # the first match replaces ``members``

    def override_for(self, keys: dict[str, str]) -> MemberOverride | None:
        """The first override matching a partition with these key values, or None."""
        return next((o for o in self.overrides if o.matches(keys)), None)

    def members_for(self, keys: dict[str, str]) -> tuple[str, ...]:
        """The member names for a partition with these key values (the first matching
        override's, when it names any)."""
        match = self.override_for(keys)
        return (match and match.members) or self.members

    def weighting_for(self, keys: dict[str, str]) -> str:
        """The weighting for a partition with these key values (first matching override's,
        when it names one)."""
        match = self.override_for(keys)
        return (match and match.weighting) or self.weighting


@dataclass(frozen=True)
class GateOverride:
    """Other bars for the partitions whose key ``key`` equals ``value`` (e.g. speed = slow)
    and whose keys in ``where`` (if any) have those values too."""

    key: str = "speed"
    value: str = "slow"
    max_mape: PositiveFloat | None = None
    min_improvement_vs_baseline: float | None = None
    metric: str | None = None
    max_wape: float | None = None
    max_rmse_zero_vs_baseline: float | None = None
    where: dict[str, str] = field(default_factory=dict)

    def matches(self, keys: dict[str, str]) -> bool:
        """Whether a partition with these key values is one these bars are for."""
        return _key_match(self.key, self.value, self.where, keys)


@dataclass(frozen=True)
class GateRules:
    """The bars one partition is held to (see :mod:`manymodels.gate`)."""

    metric: str  # "mape" or "wape": the target, baseline and champion checks use it
    max_error: float  # the target for ``metric``
    min_improvement: float  # relative reduction of ``metric`` vs the baseline
    max_rmse_zero_vs_baseline: float | None  # RMSE on zero weeks <= baseline's x this; None: off


@dataclass(frozen=True)
class GateSettings:
    run_mode: Literal["enabled", "dry_run", "disabled"] = "enabled"
    max_mape: PositiveFloat = 0.45
    min_improvement_vs_baseline: float = 0.10
    champion_tolerance: NonNegativeFloat = 0.02
    overrides: tuple[GateOverride, ...] = ()
    metric: str = "mape"
    max_wape: float = 0.45
    max_rmse_zero_vs_baseline: float | None = None

    def rules(self, keys: dict[str, str]) -> GateRules:
        """The :class:`GateRules` for a partition with these key values (overrides applied)."""
        found = {
            "metric": self.metric,
            "max_mape": self.max_mape,
            "max_wape": self.max_wape,
            "min_improvement_vs_baseline": self.min_improvement_vs_baseline,
            "max_rmse_zero_vs_baseline": self.max_rmse_zero_vs_baseline,
        }
        for o in self.overrides:
            if o.matches(keys):
                found |= {k: getattr(o, k) for k in found if getattr(o, k) is not None}
        metric = found["metric"]
        if metric not in ("mape", "wape"):
            raise ValueError(f"training.gate metric must be 'mape' or 'wape', got {metric!r}")
        return GateRules(
            metric,
            found[f"max_{metric}"],
            found["min_improvement_vs_baseline"],
            found["max_rmse_zero_vs_baseline"],
        )

    def bars(self, keys: dict[str, str]) -> tuple[float, float]:
        """``(max_mape, min_improvement_vs_baseline)`` for a partition with these key values."""
        max_mape, improvement = self.max_mape, self.min_improvement_vs_baseline
        for o in self.overrides:
            if o.matches(keys):
                max_mape = max_mape if o.max_mape is None else o.max_mape
                improvement = (
                    improvement
                    if o.min_improvement_vs_baseline is None
                    else o.min_improvement_vs_baseline
                )
        return max_mape, improvement


@dataclass(frozen=True)
class TrainingSettings:
    steps: tuple[str, ...] = (
        "condition",
        "validate",
        "partition",
        "train",
        "evaluate",
        "register",
        "promote",
    )
    split: SplitSettings = field(default_factory=SplitSettings)
    backtest: BacktestSettings = field(default_factory=BacktestSettings)
    intervals: IntervalSettings = field(default_factory=IntervalSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    lasso: LassoSettings = field(default_factory=LassoSettings)
    nn: NNSettings = field(default_factory=NNSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    intermittent: IntermittentSettings = field(default_factory=IntermittentSettings)
    gbm: BoostingSettings = field(default_factory=BoostingSettings)
    fourier: FourierSettings = field(default_factory=FourierSettings)
    level: LevelSettings = field(default_factory=LevelSettings)
    random_state: NonNegativeInt = 0
    workers: NonNegativeInt = 0
    fail_on_partition_error: Flag = True
    gate: GateSettings = field(default_factory=GateSettings)
    partitions: tuple[str, ...] = ()  # train only these (what a monitoring alert retrains)
    # partitions per worker task whose networks train as one batched program (1: one at a time)
    block_size: Count = 32
    plots: Flag = True  # draw each partition's residual plot (its run's residuals.png)
    # at most this many partitions plotted per train run (the first by partition id): a plot is
    # for a person to look at, and ~0.3 CPU-s each; 0 = no cap
    max_plots: NonNegativeInt = 16
    backend: Literal["local", "spark"] = "local"  # where partitions fit (docs/scale-out.md)
    # refit the members on all known weeks after the backtest; false: deploy the latest
    # origin's fits (one fit per member less; they have not seen its test_weeks weeks)
    refit: Flag = True


@dataclass(frozen=True)
class ScoringSettings:
    steps: tuple[str, ...] = ("condition", "validate", "score", "monitor")
    max_model_age_days: NonNegativeInt = 60
    sql_url: str = ""
    sql_table: Annotated[str, Field(min_length=1)] = "predictions"
    workers: NonNegativeInt = 0
    backend: Literal["local", "spark"] = "local"  # where partitions score (docs/scale-out.md)
    # partitions per scoring task: what one process holds at a time (docs/scale-out.md)
    block_size: Count = 64
    # workers: 0 starts one local worker per this many blocks (up to one per core): a worker's
    # start-up (its imports, ~3-4 CPU-s) is paid once for them (docs/scale-out.md)
    blocks_per_worker: Count = 8


@dataclass(frozen=True)
class SparkSettings:
    """``training.backend: spark`` / ``scoring.backend: spark`` (pipelines/spark.yaml;
    docs/scale-out.md): the session to run on and the shared folder its executors write to."""

    # "" = the session that already runs (Databricks, Synapse, spark-submit), else local[*]
    master: str = ""
    app_name: str = "manymodels"
    conf: dict[str, str] = field(default_factory=dict)  # spark.* options of a session made here
    # where executors stage models and results for the driver: "" = <workdir>; on a cluster a
    # folder every node sees (a Unity Catalog volume, /dbfs, a mounted ADLS container)
    staging_dir: str = ""
    # tasks (partitions or blocks) per Spark task; 0 = about four Spark tasks per core
    partitions_per_task: NonNegativeInt = 0
    python: str = ""  # PYSPARK_PYTHON of a local session; "" = this interpreter


@dataclass(frozen=True)
class ServingSettings:
    """``manymodels serve``: the online API (pipelines/serving.yaml; docs/serving.md)."""

    host: str = "127.0.0.1"
    port: int = 8080
    alias: str = "champion"  # the alias requests are answered with
    alias_ttl_s: float = 30.0  # an alias that moved is picked up at most this long after
    max_models: int = 64  # the LRU bound by count ...
    max_model_mb: float = 512.0  # ... and by estimated memory of models + their feature rows
    max_series: int = 200  # per request
    max_body_kb: int = 1024  # larger requests get 413
    retry_after_s: int = 30  # Retry-After of a 503 while the registry is unreachable
    registry_timeout_s: float = 5.0  # one registry HTTP call (no retries: the cache answers)
    snapshot: str = ""  # empty: <workdir>/serving/snapshot.parquet
    snapshot_check_s: float = 10.0  # how often the server looks for a newer snapshot
    history_weeks: int = 0  # weeks of history per series in the snapshot (0: all, as batch scoring)


@dataclass(frozen=True)
class AccuracyMonitorSettings:
    """Accuracy against actuals: rolling window, breach rule, allowed decay vs the backtest."""

    rolling_weeks: int = 4
    breach_weeks: int = 3  # alert when the rolling MAPE is above the gate's bar this many weeks
    max_backtest_ratio: float = 2.0  # alert when rolling MAPE > backtest MAPE x this
    min_rows: int = 20  # weeks with fewer matched rows are reported but never alert
    # an error is above a bar only when above it by this many standard errors (0: plainly)
    confidence_z: float = 2.0


@dataclass(frozen=True)
class DriftBars:
    """The alert bars of one feature type (``monitoring.drift.history`` / ``.covariates``)."""

    psi_warn: float = 0.25
    psi_alert: float = 2.0
    ks_statistic: float = 0.3


@dataclass(frozen=True)
class DriftMonitorSettings:
    """Input drift against the profile stored with each model at training time."""

    window_weeks: int = 8
    psi_warn: float = 0.25
    psi_alert: float = 2.0
    ks_pvalue: float = 0.01
    ks_statistic: float = 0.3  # the KS test alerts only with a shift this large (big samples)
    category_shift_alert: float = 0.2  # total variation distance of category shares
    min_features: int = 1  # features in alert for the partition to alert
    min_rows: int = 50  # a window with fewer rows of a feature is not judged
    # per feature type, instead of the bars above: lags and rolling means of the target, and
    # covariates (weather as a climatology, events, prices); None: the bars above
    history: DriftBars | None = None
    covariates: DriftBars | None = None


@dataclass(frozen=True)
class StalenessMonitorSettings:
    warn_days: int = 14  # "about to go stale": within this many days of scoring's age limit


@dataclass(frozen=True)
class MonitoringSettings:
    steps: tuple[str, ...] = ("condition", "validate", "monitor")
    accuracy: AccuracyMonitorSettings = field(default_factory=AccuracyMonitorSettings)
    drift: DriftMonitorSettings = field(default_factory=DriftMonitorSettings)
    staleness: StalenessMonitorSettings = field(default_factory=StalenessMonitorSettings)
    history_runs: int = 50  # MLflow runs read back for the pipeline and data-quality panels
    predictions_from: str = "parquet"  # parquet (<workdir>/predictions) or sql (scoring.sql_url)


@dataclass(frozen=True)
class Settings:
    env: Literal["dev", "prod"] = "dev"
    project: ProjectSettings = field(default_factory=ProjectSettings)
    mock: MockSettings = field(default_factory=MockSettings)
    data: DataSettings = field(default_factory=DataSettings)
    sources: tuple[SourceSettings, ...] = ()
    partition: PartitionSettings = field(default_factory=PartitionSettings)
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    spark: SparkSettings = field(default_factory=SparkSettings)

    @property
    def workdir(self) -> Path:
        return Path(self.project.workdir)

    def path(self, *parts: str) -> Path:
        """A path below the working folder, e.g. ``settings.path("raw")``."""
        return self.workdir.joinpath(*parts)

    def replace(self, overrides: dict[str, Any]) -> Settings:
        """A copy with dotted-key overrides applied, e.g. ``{"training.nn.epochs": 3}``.

        Raises:
            ConfigError: a key is unknown or a value is invalid (the same checks as loading).
        """
        data = dataclasses.asdict(self)
        origin: dict[tuple[str, ...], str] = {}
        for key, value in overrides.items():
            _set_dotted(data, key, value, "override")
            origin[tuple(key.split("."))] = f"override {key}={value!r}"
        return _build(data, origin)


def store_uri(settings: Settings, env: str, kind: str, *, generic: bool = True) -> str:
    """The configured MLflow ``kind`` URI (``"TRACKING"`` or ``"REGISTRY"``) of ``env``, or "".

    ``MANYMODELS_<ENV>_<KIND>_URI``, else (``generic``, and ``env`` is the one the command runs
    in) ``MLFLOW_<KIND>_URI``, else ``mlflow.<env>.<kind>_uri``. Reads no store and imports no
    MLflow: :func:`manymodels.registry.resolve_store` and the mock-data check both use it.
    """
    specific = os.environ.get(f"MANYMODELS_{env.upper()}_{kind}_URI", "")
    fallback = os.environ.get(f"MLFLOW_{kind}_URI", "") if generic and env == settings.env else ""
    return specific or fallback or getattr(getattr(settings.mlflow, env), f"{kind.lower()}_uri")


def load_settings(
    config_dir: str | Path = "pipelines",
    env: str = "dev",
    overrides: list[str] | tuple[str, ...] = (),
) -> Settings:
    """Read every ``*.yaml`` in ``config_dir``, overlay ``env/<env>.yaml`` and ``overrides``.

    Args:
        config_dir: folder holding the pipeline YAML files.
        env: ``dev`` or ``prod``; selects the overlay and the MLflow store.
        overrides: ``"a.b=value"`` strings (values parsed as YAML scalars).

    Returns:
        The frozen :class:`Settings`.

    Raises:
        ConfigError: a file is missing or malformed, a key is unknown, or a value has the
            wrong type or is out of range (pydantic checks every field against the dataclasses
            below; the message names each key's dotted path and the file or ``--set`` it came
            from).
    """
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}: use one of {', '.join(ENVIRONMENTS)}")
    config_dir = Path(config_dir)
    files = sorted(config_dir.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no *.yaml settings in {config_dir}/: run from the repository root")
    merged: dict[str, Any] = {}
    owner: dict[str, Path] = {}
    origin: dict[tuple[str, ...], str] = {}  # key path -> the file or --set that gave it
    for path in files:
        for section, value in _read_yaml(path).items():
            if section in owner:
                raise ConfigError(
                    f"section {section!r} is defined in both {owner[section]} and {path}"
                )
            owner[section] = path
            merged[section] = value
            origin.update(dict.fromkeys(_leaves(value, (str(section),)), str(path)))
    overlay = config_dir / "env" / f"{env}.yaml"
    if overlay.exists():
        extra = _read_yaml(overlay)
        _deep_merge(merged, extra)
        origin.update(dict.fromkeys(_leaves(extra), str(overlay)))
    merged["env"] = env
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""  # `key=` sets empty text
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {exc}") from exc
        _set_dotted(merged, key.strip(), value, "--set")
        origin[tuple(key.strip().split("."))] = f"--set {item}"
    return _build(merged, origin)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _set_dotted(data: dict[str, Any], key: str, value: Any, where: str) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: {key!r}: {part!r} is not a section")
        node = child
    node[leaf] = value


def _build(data: dict[str, Any], origin: dict[tuple[str, ...], str]) -> Settings:
    """Validate ``data`` against the :class:`Settings` dataclasses with pydantic.

    ``origin`` maps key paths to the file or ``--set`` that gave them, so each error names
    where to fix it.
    """
    try:
        return _adapter(Settings).validate_python(_dates_as_text(data))
    except pydantic.ValidationError as exc:
        problems = [_describe(error, origin) for error in exc.errors(include_url=False)]
    count = f"{len(problems)} errors" if len(problems) > 1 else "1 error"
    raise ConfigError(f"invalid settings ({count}):\n  " + "\n  ".join(problems))


def _dates_as_text(value: Any) -> Any:
    """YAML reads an unquoted ``2024-05-27`` as a date: give it back as text, which a date field
    parses and a text field (``data.as_of``) keeps."""
    if isinstance(value, dict):
        return {k: _dates_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_dates_as_text(v) for v in value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@functools.cache
def _adapter(cls: type) -> pydantic.TypeAdapter:
    # The config of the top dataclass applies to every dataclass nested in it: any new section
    # is validated the same way without naming it here.
    if "__pydantic_config__" not in vars(cls):
        cls.__pydantic_config__ = _PYDANTIC_CONFIG
    return pydantic.TypeAdapter(cls)


_PYDANTIC_CONFIG = pydantic.ConfigDict(extra="forbid", coerce_numbers_to_str=True)


def _describe(error: Any, origin: dict[tuple[str, ...], str]) -> str:
    loc = tuple(error["loc"])
    keys = tuple(str(part) for part in loc if not isinstance(part, int))
    source = next(
        (origin[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in origin), "defaults"
    )
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    path = path.lstrip(".") or "(top level)"
    if error["type"] == "unexpected_keyword_argument":
        known = _known_keys(Settings, loc[:-1])
        return f"{source}: {path}: unknown key; known: {', '.join(known)}"
    message = error["msg"]
    if error["type"] == "literal_error":
        message = f"Input should be {error['ctx']['expected']}"
    return f"{source}: {path}: {message}, got {error['input']!r}"


def _known_keys(cls: Any, loc: tuple[Any, ...]) -> list[str]:
    """The field names of the dataclass found at ``loc`` below ``cls`` (empty if none)."""
    for part in loc:
        if isinstance(part, int):
            continue
        hints = typing.get_type_hints(cls, include_extras=False) if _is_class(cls) else {}
        cls = hints.get(part)
        while typing.get_origin(cls) in (tuple, typing.Union, types.UnionType):
            cls = next((a for a in typing.get_args(cls) if _is_class(a)), None)
    return sorted(f.name for f in dataclasses.fields(cls)) if _is_class(cls) else []


def _is_class(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _leaves(data: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path in a nested mapping, sections included (lists are leaves)."""
    if prefix:
        yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*prefix, str(key)))

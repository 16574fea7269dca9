"""Typed, frozen settings parsed once from ``pipelines/*.yaml`` plus an environment overlay.

Each YAML file under the config folder owns its own top-level sections (a section defined in two
files is an error). ``pipelines/env/<env>.yaml`` then overrides any key, and ``--set a.b=value``
overrides from the command line win over both. Secrets never live here: MLflow URIs and
credentials come from environment variables (see :mod:`manymodels.registry`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "DataSettings",
    "GateOverride",
    "GateSettings",
    "MlflowSettings",
    "MockSettings",
    "PartitionSettings",
    "Settings",
    "load_settings",
]

ENVIRONMENTS = ("dev", "prod")


class ConfigError(ValueError):
    """A settings file or override is wrong; the message names the file and key."""


@dataclass(frozen=True)
class ProjectSettings:
    name: str = "manymodels"
    workdir: str = "work"


@dataclass(frozen=True)
class MockSettings:
    regions: int = 14
    stores_per_region: int = 4
    products: int = 20
    start: dt.date = dt.date(2017, 1, 2)
    weeks: int = 0
    forecast_weeks: int = 4
    seed: int = 42


@dataclass(frozen=True)
class DataSettings:
    horizon_weeks: int = 4
    as_of: str = ""
    earliest_week: dt.date = dt.date(2017, 1, 2)
    max_units: float = 100_000
    max_age_days: int = 30
    max_missing_week_share: float = 0.0


@dataclass(frozen=True)
class PartitionSettings:
    keys: tuple[str, ...] = ("region", "store_format", "speed")
    slow_zero_share: float = 0.3


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


@dataclass(frozen=True)
class SplitSettings:
    validation_weeks: int = 8
    test_weeks: int = 8


@dataclass(frozen=True)
class FeatureSettings:
    lags: tuple[int, ...] = (0, 1, 2, 3, 48)
    rolling_windows: tuple[int, ...] = (4, 13)


@dataclass(frozen=True)
class LassoSettings:
    alpha: float = 0.003


@dataclass(frozen=True)
class NNSettings:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 0.005
    hidden_units: int = 32
    embedding_dim: int = 4
    patience: int = 5
    device: str = "auto"


@dataclass(frozen=True)
class EnsembleSettings:
    weighting: str = "nnls"


@dataclass(frozen=True)
class GateOverride:
    """Other bars for the partitions whose key ``key`` equals ``value`` (e.g. speed = slow)."""

    key: str = "speed"
    value: str = "slow"
    max_mape: float | None = None
    min_improvement_vs_baseline: float | None = None


@dataclass(frozen=True)
class GateSettings:
    run_mode: str = "enabled"
    max_mape: float = 0.45
    min_improvement_vs_baseline: float = 0.10
    champion_tolerance: float = 0.02
    overrides: tuple[GateOverride, ...] = ()

    def bars(self, keys: dict[str, str]) -> tuple[float, float]:
        """``(max_mape, min_improvement_vs_baseline)`` for a partition with these key values."""
        max_mape, improvement = self.max_mape, self.min_improvement_vs_baseline
        for o in self.overrides:
            if keys.get(o.key) == o.value:
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
    features: FeatureSettings = field(default_factory=FeatureSettings)
    lasso: LassoSettings = field(default_factory=LassoSettings)
    nn: NNSettings = field(default_factory=NNSettings)
    ensemble: EnsembleSettings = field(default_factory=EnsembleSettings)
    random_state: int = 0
    workers: int = 0
    fail_on_partition_error: bool = True
    gate: GateSettings = field(default_factory=GateSettings)
    partitions: tuple[str, ...] = ()  # train only these (what a monitoring alert retrains)


@dataclass(frozen=True)
class ScoringSettings:
    steps: tuple[str, ...] = ("condition", "validate", "score", "monitor")
    max_model_age_days: int = 60
    sql_url: str = ""
    sql_table: str = "predictions"
    workers: int = 0


@dataclass(frozen=True)
class AccuracyMonitorSettings:
    """Accuracy against actuals: rolling window, breach rule, allowed decay vs the backtest."""

    rolling_weeks: int = 4
    breach_weeks: int = 3  # alert when the rolling MAPE is above the gate's bar this many weeks
    max_backtest_ratio: float = 2.0  # alert when rolling MAPE > backtest MAPE x this
    min_rows: int = 20  # weeks with fewer matched rows are reported but never alert


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
    env: str = "dev"
    project: ProjectSettings = field(default_factory=ProjectSettings)
    mock: MockSettings = field(default_factory=MockSettings)
    data: DataSettings = field(default_factory=DataSettings)
    partition: PartitionSettings = field(default_factory=PartitionSettings)
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)

    @property
    def workdir(self) -> Path:
        return Path(self.project.workdir)

    def path(self, *parts: str) -> Path:
        """A path below the working folder, e.g. ``settings.path("raw")``."""
        return self.workdir.joinpath(*parts)

    def replace(self, overrides: dict[str, Any]) -> Settings:
        """A copy with dotted-key overrides applied, e.g. ``{"training.nn.epochs": 3}``."""
        data = dataclasses.asdict(self)
        for key, value in overrides.items():
            _set_dotted(data, key, value, "override")
        return _build(Settings, data, "override")


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
            wrong type.
    """
    if env not in ENVIRONMENTS:
        raise ConfigError(f"unknown environment {env!r}: use one of {', '.join(ENVIRONMENTS)}")
    config_dir = Path(config_dir)
    files = sorted(config_dir.glob("*.yaml"))
    if not files:
        raise ConfigError(f"no *.yaml settings in {config_dir}/: run from the repository root")
    merged: dict[str, Any] = {}
    owner: dict[str, Path] = {}
    for path in files:
        for section, value in _read_yaml(path).items():
            if section in owner:
                raise ConfigError(
                    f"section {section!r} is defined in both {owner[section]} and {path}"
                )
            owner[section] = path
            merged[section] = value
    overlay = config_dir / "env" / f"{env}.yaml"
    if overlay.exists():
        _deep_merge(merged, _read_yaml(overlay))
    merged["env"] = env
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {exc}") from exc
        _set_dotted(merged, key.strip(), value, "--set")
    return _build(Settings, merged, str(config_dir))


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


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {name: _coerce(hints[name], value, f"{where}: {name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:  # noqa: PLR0911, PLR0912
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1]
        return tuple(_coerce(item, v, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError as exc:
            raise ConfigError(f"{where}: expected a date like 2017-01-02, got {value!r}") from exc
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if hint is int and value != int(value):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return hint(value)
    if hint is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return "" if value is None else str(value)
    return value

"""Compact scoring forms of fitted champions: numpy arrays applied to a partition's future rows.

Batch scoring forecasts ~80 future rows per partition; through the estimators' own ``predict``
most of the cost is scikit-learn's per-call machinery (input validation, a ``Pipeline`` and a
``ColumnTransformer`` per linear member) and unpickling a torch module per network.
:func:`compile_packed` turns a :class:`~manymodels.pyfunc.PackedModel` into a
:class:`CompactModel` holding only what each member's forecast needs, as arrays:

* LASSO, fourier and glm: the standardisation, one-hot categories and coefficients of their
  design, applied with numpy (fourier's per-level terms built as a dense matrix, as fitted);
* the embedding network: its weights, forward pass in numpy (float32, as torch runs it);
* the GBM: its trees' node arrays, read by scikit-learn's own compiled tree walker (no input
  validation per call);
* intermittent and the historical-average baseline: their levels and averages as look-ups.

The forecasts are those of the estimators (``tests/unit/test_scoring_compact.py`` checks every
member kind on real trained models: float64 members to 1e-9 relative, the float32 network to
1e-5). A model with a member it does not know raises :class:`NotCompact`, and its caller scores
it with the model itself. :func:`save_compact` writes the form beside ``packed.joblib`` at save
time (:meth:`~manymodels.pyfunc.PackedModel.save`), so scoring unpickles neither scikit-learn
nor torch objects; models saved without it are compiled at load.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from manymodels.features import HISTORY_PREFIXES
from manymodels.kernels import fourier_terms, interval_bounds, signed_expm1, signed_log1p

__all__ = [
    "COMPACT_FILE",
    "CompactModel",
    "NotCompact",
    "Rows",
    "compile_packed",
    "load_compact",
    "save_compact",
]

COMPACT_FILE = "compact.pkl"  # beside packed.joblib in a model's artifacts
FORMAT = 1  # bumped when the classes below change shape: an older file is compiled again


class NotCompact(ValueError):
    """The model (or one of its members) has no compact form: score it with the model."""


def _finite(matrix: np.ndarray, columns: list, partition: str) -> None:
    ok = np.isfinite(matrix).all(axis=0)
    if not ok.all():
        bad = [c for c, fine in zip(columns, ok, strict=True) if not fine]
        raise ValueError(
            f"partition {partition!r}: X column(s) {bad} contain NaN or inf: fill covariates "
            "before modelling (the validate step reports gaps)"
        )


class Rows:
    """A frame's columns as numpy arrays, each converted once however many members read it."""

    def __init__(self, frame: pd.DataFrame):
        self.frame, self.n = frame, len(frame)
        self._cache: dict = {}
        self._whole: tuple[Rows, int, int] | None = None

    def part(self, start: int, stop: int) -> Rows:
        """Rows ``start:stop`` of these: each column converted once for all the parts (a
        block's partitions), each part reading a copy of its own rows."""
        rows = Rows(self.frame)
        rows.n, rows._whole = stop - start, (self, start, stop)
        return rows

    def __len__(self) -> int:
        return self.n

    def has(self, columns) -> bool:
        return set(columns) <= set(self.frame.columns)

    def _get(self, kind: str, column: str, convert):
        key = (kind, column)
        if key not in self._cache:
            if self._whole is None:
                self._cache[key] = convert(self.frame[column])
            else:
                whole, start, stop = self._whole
                self._cache[key] = whole._get(kind, column, convert)[start:stop].copy()
        return self._cache[key]

    def num(self, column: str) -> np.ndarray:
        return self._get("num", column, lambda s: s.to_numpy(dtype=float))

    def obj(self, column: str) -> np.ndarray:
        return self._get("obj", column, lambda s: np.asarray(s.astype(object).to_numpy()))

    def text(self, column: str) -> np.ndarray:
        return self._get("text", column, lambda s: s.astype(str).to_numpy().astype(object))

    def raw(self, column: str) -> np.ndarray:
        return self._get("raw", column, lambda s: pd.to_datetime(s).to_numpy())


def _floats(rows: Rows, columns: list, partition: str = "") -> np.ndarray:
    missing = [c for c in columns if c not in rows.frame.columns]
    if missing:
        raise ValueError(f"X lacks feature column(s) {missing} that the model was fitted with")
    if not columns:
        return np.empty((len(rows), 0))
    values = np.column_stack([rows.num(c) for c in columns])
    _finite(values, columns, partition)
    return values


@dataclass
class Linear:
    """LASSO, fourier (lasso loss) or glm (Poisson): numeric slots (a frame column, or a
    fourier term of one ``by`` level), then one-hot categories, then coefficients."""

    columns: list  # frame columns of the plain numeric slots
    plain: np.ndarray  # slot indices of those columns
    logged: np.ndarray  # bool per slot: signed log1p first (history columns)
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # numeric slots' coefficients
    categorical: list  # [(column, pd.Index of categories, coefficient per category)]
    intercept: float
    target_scale: float = 1.0
    log_target: bool = False
    poisson: bool = False
    # fourier: the level column, its levels, and per fx slot its (level, term)
    by: str = ""
    levels: Any = None
    fx: np.ndarray | None = None  # slot indices
    fx_level: np.ndarray | None = None
    fx_term: np.ndarray | None = None
    harmonics: int = 0
    interact: list = field(default_factory=list)

    def predict(self, frame: Rows) -> np.ndarray:
        n = len(frame)
        x = np.zeros((n, len(self.mean)))
        x[:, self.plain] = _floats(frame, self.columns)
        if self.fx is not None and len(self.fx):
            base = _fourier_base(frame, self.harmonics, self.interact)
            level = self.levels.get_indexer(frame.text(self.by))
            x[:, self.fx] = np.where(
                level[:, None] == self.fx_level[None, :], base[:, self.fx_term], 0.0
            )
        x[:, self.logged] = signed_log1p(x[:, self.logged])
        raw = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        for column, categories, coef in self.categorical:
            code = categories.get_indexer(frame.obj(column))
            raw = raw + np.where(code >= 0, coef[np.maximum(code, 0)], 0.0)
        if self.poisson:
            return np.exp(raw)
        raw = raw * self.target_scale
        return np.clip(signed_expm1(raw) if self.log_target else raw, 0.0, None)


def _fourier_base(frame: Rows, harmonics: int, interact: list) -> np.ndarray:
    terms = []
    if harmonics and frame.has(("year_sin", "year_cos")):
        terms = list(
            fourier_terms(frame.num("year_sin"), frame.num("year_cos"), harmonics).values()
        )
    terms += [frame.num(c) for c in interact]
    return np.column_stack(terms) if terms else np.empty((len(frame), 0))


@dataclass
class Net:
    """The embedding network: category codes and scaled numbers through its weights."""

    categorical: list  # [(column, pd.Index of categories)]
    numeric: list
    history: np.ndarray  # bool per numeric column
    mean: np.ndarray
    scale: np.ndarray
    embeddings: list  # float32 tables, row 0: unseen
    layers: list  # [(weight.T, bias)] float32
    poisson: bool
    scale_feature: str | None
    level: float
    log_target: bool
    target_mean: float
    target_scale: float

    def predict(self, frame: Rows) -> np.ndarray:
        numeric = _floats(frame, self.numeric)
        log_level = self._log_level(frame)
        if self.poisson:
            level = np.exp(log_level.astype(float))
            numeric[:, self.history] = numeric[:, self.history] / level[:, None]
            numeric = np.column_stack([numeric, np.log(level)])
        elif self.log_target:
            numeric[:, self.history] = signed_log1p(numeric[:, self.history])
        parts = [
            table[cats.get_indexer(frame.obj(col)) + 1]
            for (col, cats), table in zip(self.categorical, self.embeddings, strict=True)
        ]
        h = np.concatenate([*parts, ((numeric - self.mean) / self.scale).astype(np.float32)], 1)
        for i, (weight, bias) in enumerate(self.layers):
            h = h @ weight + bias
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0)
        out = h[:, 0].astype(np.float64)
        if self.poisson:
            return np.exp(np.minimum(out + log_level, 30.0))
        pred = out * self.target_scale + self.target_mean
        return np.clip(signed_expm1(pred) if self.log_target else pred, 0.0, None)

    def _log_level(self, frame: Rows) -> np.ndarray:
        if not self.poisson:
            return np.zeros(len(frame), dtype=np.float32)
        if self.scale_feature is None:
            return np.full(len(frame), np.log(self.level), dtype=np.float32)
        values = _floats(frame, [self.scale_feature])[:, 0]
        return np.log1p(np.clip(values, 0, None)).astype(np.float32)


@dataclass
class Trees:
    """The GBM: its trees' nodes, walked by scikit-learn's compiled predictor (no validation)."""

    categorical: list  # [(column, pd.Index of categories)]
    numeric: list
    history: np.ndarray
    scale_feature: str | None
    trees: list  # [(nodes, raw_left_cat_bitsets)]
    known: np.ndarray
    f_idx_map: np.ndarray
    baseline: float
    constant: float | None = None

    def predict(self, frame: Rows) -> np.ndarray:
        from sklearn.ensemble._hist_gradient_boosting._predictor import (  # noqa: PLC0415
            _predict_from_raw_data,
        )

        if self.constant is not None:
            return np.full(len(frame), self.constant)
        num = _floats(frame, self.numeric)
        scale = np.ones(len(frame))
        if self.scale_feature:
            scale = 1.0 + np.clip(num[:, self.numeric.index(self.scale_feature)], 0.0, None)
        num[:, self.history] = num[:, self.history] / scale[:, None]
        codes = [c.get_indexer(frame.text(col)).astype(float) for col, c in self.categorical]
        cats = np.column_stack(codes) if codes else np.empty((len(frame), 0))
        cats[cats < 0] = np.nan
        x = np.ascontiguousarray(np.column_stack([cats, num, np.log(scale)]))
        raw = np.full(len(frame), self.baseline)
        out = np.empty(len(frame))
        for nodes, bitsets in self.trees:
            _predict_from_raw_data(nodes, x, bitsets, self.known, self.f_idx_map, 1, out)
            raw += out
        return np.clip(np.exp(raw) * scale, 0.0, None)


@dataclass
class Levels:
    """The intermittent member: per series, its smoothed level through each kept week."""

    series_cols: list
    time_col: str
    horizon_weeks: int
    series: pd.Index  # "store\x1fproduct" per column of levels
    weeks: np.ndarray
    levels: np.ndarray
    default: float

    def predict(self, frame: Rows) -> np.ndarray:
        column = self.series.get_indexer(_joined(frame, self.series_cols))
        known = frame.raw(self.time_col) - np.timedelta64(7 * self.horizon_weeks, "D")
        row = np.clip(np.searchsorted(self.weeks, known, side="right") - 1, 0, len(self.weeks) - 1)
        pred = np.full(len(frame), np.nan)
        seen = column >= 0
        pred[seen] = self.levels[row[seen], column[seen]]
        return np.clip(np.where(np.isnan(pred), self.default, pred), 0.0, None)


@dataclass
class Leveled:
    """The ``level`` member: its base member's forecast times each series' factor
    (``exp`` of its log-scale offset; series it did not see keep the base's)."""

    base: Any  # the base member's compact form
    series_cols: list
    series: pd.Index  # "store\x1fproduct" per offset
    offsets: np.ndarray

    def predict(self, frame: Rows) -> np.ndarray:
        base = np.clip(np.asarray(self.base.predict(frame), float), 0.0, None)
        at = self.series.get_indexer(_joined(frame, self.series_cols))
        offset = np.where(at >= 0, self.offsets[np.maximum(at, 0)], 0.0)
        return np.clip(np.expm1(np.log1p(base) + offset), 0.0, None)


def _joined(frame: Rows, cols: list) -> np.ndarray:
    text = [frame.text(c) for c in cols]
    out = text[0]
    for more in text[1:]:
        out = out + "\x1f" + more
    return out


@dataclass
class Averages:
    """The historical-average baseline: per series x week of year, per series, overall."""

    columns: list  # the seasonal cell's key columns (the series' are its first)
    n_groups: int
    seasonal: dict | None
    groups: dict | None
    global_mean: float

    def predict(self, frame: Rows) -> np.ndarray:
        if not frame.has(self.columns):
            raise ValueError(f"HistoricalAverageBaseline needs key column(s) {self.columns} in X")
        keys = list(zip(*(frame.obj(c) for c in self.columns), strict=True))
        nan = float("nan")
        pred = np.full(len(frame), nan)
        if self.seasonal is not None:
            pred = np.array([self.seasonal.get(k, nan) for k in keys], dtype=float)
        if self.groups is not None:
            g = self.n_groups
            key = (lambda k: k[0]) if g == 1 else (lambda k: k[:g])
            found = np.array([self.groups.get(key(k), nan) for k in keys], dtype=float)
            pred = np.where(np.isnan(pred), found, pred)
        return np.where(np.isnan(pred), self.global_mean, pred)


@dataclass
class CompactModel:
    """What batch scoring needs of a :class:`~manymodels.pyfunc.PackedModel`: the same
    ``predict_frame`` and the fields :func:`manymodels.scoring.predict_future` reads."""

    kind: str
    partition: str
    features: dict
    columns: list
    members: list  # [(name, member, weight)]; one, weight None, for a lone estimator
    intervals: tuple | None = None  # (names, quantiles)
    fallback: CompactModel | None = None
    series: list | None = None
    trained_through: str = ""
    format: int = FORMAT

    def predict(self, frame: pd.DataFrame | Rows) -> np.ndarray:
        rows = frame if isinstance(frame, Rows) else Rows(frame)
        missing = [c for c in self.columns if c not in rows.frame.columns]
        if missing:
            raise ValueError(
                f"model for partition {self.partition!r} needs feature columns {missing}: "
                "build them with manymodels.features.build_features(**model.features)"
            )
        if len(self.members) == 1 and self.members[0][2] is None:
            point = self.members[0][1].predict(rows)
        else:
            preds = np.column_stack([m.predict(rows) for _, m, _ in self.members])
            point = np.clip(preds @ np.array([w for *_, w in self.members]), 0.0, None)
        return np.clip(np.asarray(point, float), 0, None)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        point = self.predict(frame)
        out = {"prediction": point}
        if self.intervals is not None:
            out |= interval_bounds(point, *self.intervals)
        return pd.DataFrame(out)


def compile_packed(packed) -> CompactModel:
    """The compact form of ``packed`` (a :class:`~manymodels.pyfunc.PackedModel`).

    Raises:
        NotCompact: a member (or the estimator) of a kind this module does not know.
    """
    from manymodels.models.ensemble import Ensemble  # noqa: PLC0415
    from manymodels.models.intervals import quantile_names  # noqa: PLC0415

    estimator = packed.estimator
    if isinstance(estimator, Ensemble):
        members = [
            (name, _member(est), float(estimator.weights_[name]))
            for name, est in estimator.members_.items()
        ]
    else:
        members = [("estimator", _member(estimator), None)]
    intervals = getattr(packed, "intervals", None)
    if intervals is not None:
        intervals = (quantile_names(intervals.coverage), tuple(intervals.quantiles_))
    fallback = getattr(packed, "fallback", None)
    series = getattr(packed, "series", None)
    return CompactModel(
        kind=packed.kind,
        partition=packed.partition,
        features=dict(packed.features),
        columns=list(packed.columns),
        members=members,
        intervals=intervals,
        fallback=None if fallback is None else compile_packed(fallback),
        series=None if series is None else list(series),
        trained_through=getattr(packed, "trained_through", ""),
    )


def _member(est):
    from manymodels.models import (  # noqa: PLC0415
        BoostingForecaster,
        EmbeddingNetForecaster,
        FourierForecaster,
        HistoricalAverageBaseline,
        IntermittentForecaster,
        LassoForecaster,
    )
    from manymodels.models.level import SeriesLevelForecaster  # noqa: PLC0415

    compilers = {
        LassoForecaster: _lasso,
        FourierForecaster: _fourier,
        EmbeddingNetForecaster: _net,
        BoostingForecaster: _trees,
        IntermittentForecaster: _levels,
        HistoricalAverageBaseline: _averages,
        SeriesLevelForecaster: _leveled,
    }
    compiler = compilers.get(type(est))
    if compiler is None:
        raise NotCompact(f"no compact form for a {type(est).__name__} member")
    try:
        return compiler(est)
    except NotCompact:
        raise
    except (AttributeError, KeyError, TypeError, IndexError) as exc:
        raise NotCompact(f"{type(est).__name__}: {exc}") from exc


def _design(columns, model, fx_names: dict | None = None) -> dict:
    """The numeric slots, categories and coefficients of a fitted ``linear_columns`` design
    followed by a linear ``model`` (Lasso or PoissonRegressor)."""
    from sklearn.pipeline import Pipeline  # noqa: PLC0415
    from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: PLC0415

    coef = np.asarray(model.coef_, float).ravel()
    names, logged, mean, scale, slots, categorical = [], [], [], [], [], []
    for name, trans, cols in columns.transformers_:
        part = columns.output_indices_.get(name, slice(0, 0))
        if part.stop == part.start or trans == "drop":
            continue
        if name in ("history", "numeric"):
            scaler = trans.steps[-1][1] if isinstance(trans, Pipeline) else trans
            if not isinstance(scaler, StandardScaler):
                raise NotCompact(f"design step {name!r} is a {type(scaler).__name__}")
            n = len(cols)
            mean.append(np.zeros(n) if scaler.mean_ is None else np.asarray(scaler.mean_))
            scale.append(np.ones(n) if scaler.scale_ is None else np.asarray(scaler.scale_))
            logged += [name == "history"] * n
            names += list(cols)
            slots.append(coef[part])
        elif name == "categorical" and isinstance(trans, OneHotEncoder):
            if trans.drop_idx_ is not None or getattr(trans, "_infrequent_enabled", False):
                raise NotCompact("one-hot encoding with dropped or infrequent categories")
            at = part.start
            for col, cats in zip(cols, trans.categories_, strict=True):
                categorical.append((col, pd.Index(cats), coef[at : at + len(cats)].copy()))
                at += len(cats)
        else:
            raise NotCompact(f"design step {name!r} is a {type(trans).__name__}")
    fx_names = fx_names or {}
    plain = [i for i, c in enumerate(names) if c not in fx_names]
    fx = [i for i, c in enumerate(names) if c in fx_names]
    return {
        "columns": [names[i] for i in plain],
        "plain": np.array(plain, dtype=np.intp),
        "logged": np.array(logged, dtype=bool),
        "mean": np.concatenate(mean) if mean else np.zeros(0),
        "scale": np.concatenate(scale) if scale else np.ones(0),
        "coef": np.concatenate(slots) if slots else np.zeros(0),
        "categorical": categorical,
        "intercept": float(np.asarray(model.intercept_).ravel()[0]),
        "fx": np.array(fx, dtype=np.intp),
        "fx_level": np.array([fx_names[names[i]][0] for i in fx], dtype=np.intp),
        "fx_term": np.array([fx_names[names[i]][1] for i in fx], dtype=np.intp),
    }


def _lasso(est) -> Linear:
    columns, lasso = est.pipeline_.named_steps["columns"], est.pipeline_.named_steps["lasso"]
    design = _design(columns, lasso)
    del design["fx"], design["fx_level"], design["fx_term"]
    return Linear(
        **design, target_scale=est.target_scale_, log_target=est.target_transform_ == "log1p"
    )


def _fourier(est) -> Linear:
    from sklearn.linear_model import Lasso, PoissonRegressor  # noqa: PLC0415

    columns, model = est.model_.named_steps["columns"], est.model_.named_steps["model"]
    if not isinstance(model, Lasso | PoissonRegressor):
        raise NotCompact(f"fourier model is a {type(model).__name__}")
    terms = []
    if est.harmonics:
        terms = [f"{t}{k}" for k in range(1, int(est.harmonics) + 1) for t in ("sin", "cos")]
    terms += list(est.interact_)
    # the per-level terms exist only when _expand made them (levels and a base)
    fx_names = {
        f"fx_{lv}_{term}": (i, j)
        for i, lv in enumerate(est.levels_)
        for j, term in enumerate(terms)
    }  # fmt: skip
    design = _design(columns, model, fx_names if est.extra_features_ else {})
    if est.extra_features_ and est.harmonics:
        # _expand adds Fourier terms only when year_sin/year_cos are features; trust the fit
        if not {"year_sin", "year_cos"} <= {*est.numeric_features_}:
            raise NotCompact("fourier terms without year_sin/year_cos")
    return Linear(
        **design,
        target_scale=est.target_scale_,
        log_target=est.loss == "lasso" and est.target_transform_ == "log1p",
        poisson=est.loss == "poisson",
        by=est.by,
        levels=pd.Index(est.levels_),
        harmonics=int(est.harmonics),
        interact=list(est.interact_),
    )


def _net(est) -> Net:
    from torch import nn  # noqa: PLC0415

    module = est.module_
    mlp = list(module["mlp"])
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    kinds = [type(m) for m in mlp]
    if kinds != [nn.Linear, nn.ReLU] * (len(linears) - 1) + [nn.Linear]:
        raise NotCompact(f"network layers {[k.__name__ for k in kinds]}")
    loss = getattr(est, "loss", "mse")
    return Net(
        categorical=[
            (c, pd.Index(cats))
            for c, cats in zip(est.categorical_features_, est.categories_, strict=True)
        ],
        numeric=list(est.numeric_features_),
        history=np.array([str(c).startswith(HISTORY_PREFIXES) for c in est.numeric_features_]),
        mean=np.asarray(est.numeric_mean_),
        scale=np.asarray(est.numeric_scale_),
        embeddings=[e.weight.detach().numpy().copy() for e in module["embeddings"]],
        layers=[
            (m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears
        ],  # fmt: skip
        poisson=loss == "poisson",
        scale_feature=getattr(est, "scale_feature", None),
        level=float(getattr(est, "level_", 1.0)),
        log_target=est.target_transform_ == "log1p",
        target_mean=float(est.target_mean_),
        target_scale=float(est.target_scale_),
    )


def _trees(est) -> Trees:
    model = est.model_
    history = np.array([str(c).startswith(HISTORY_PREFIXES) for c in est.numeric_features_])
    common = {
        "categorical": [(c, est.categories_[c]) for c in est.categorical_features_],
        "numeric": list(est.numeric_features_),
        "history": history,
        "scale_feature": est.scale_feature,
    }
    if est.constant_ is not None:
        empty = np.zeros(0)
        return Trees(**common, trees=[], known=empty, f_idx_map=empty, baseline=0.0,
                     constant=float(est.constant_))  # fmt: skip
    if model.loss != "poisson" or model.n_trees_per_iteration_ != 1:
        raise NotCompact(f"GBM loss {model.loss!r}")
    known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()  # noqa: SLF001
    return Trees(
        **common,
        trees=[(p.nodes, p.raw_left_cat_bitsets) for (p,) in model._predictors],  # noqa: SLF001
        known=known,
        f_idx_map=f_idx_map,
        baseline=float(np.asarray(model._baseline_prediction).ravel()[0]),  # noqa: SLF001
    )


def _levels(est) -> Levels:
    series = [e if isinstance(e, tuple) else (e,) for e in est.series_]
    return Levels(
        series_cols=list(est.series_cols),
        time_col=est.time_col,
        horizon_weeks=int(est.horizon_weeks),
        series=pd.Index(["\x1f".join(str(v) for v in e) for e in series]),
        weeks=np.asarray(est.weeks_),
        levels=np.asarray(est.levels_),
        default=float(est.default_level_),
    )


def _leveled(est) -> Leveled:
    index = est.offsets_.index
    keys = index.tolist() if isinstance(index, pd.MultiIndex) else [(k,) for k in index]
    if any(len(k) != len(est.series_cols) for k in keys):
        raise NotCompact("level offsets keyed by other columns than series_cols")
    return Leveled(
        base=_member(est.base_),
        series_cols=list(est.series_cols),
        series=pd.Index(["\x1f".join(str(v) for v in k) for k in keys]),
        offsets=est.offsets_.to_numpy(dtype=float),
    )


def _averages(est) -> Averages:
    groups, seasonal = est._levels()  # noqa: SLF001

    def table(means):
        if means is None:
            return None
        keys = means.index.tolist()
        return dict(zip(keys, means.to_numpy(dtype=float).tolist(), strict=True))

    return Averages(
        columns=[*groups, *seasonal],
        n_groups=len(groups),
        seasonal=table(est.seasonal_means_),
        groups=table(est.group_means_),
        global_mean=float(est.global_mean_),
    )


def save_compact(packed, folder: str | Path) -> Path | None:
    """Write ``packed``'s compact form to ``folder/compact.pkl``; None when it has none."""
    try:
        compact = compile_packed(packed)
    except NotCompact:
        return None
    path = Path(folder) / COMPACT_FILE
    with path.open("wb") as f:
        pickle.dump(compact, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_compact(path: str | Path) -> CompactModel | None:
    """The compact form saved at ``path``; None when there is none or it is of another format
    (the caller loads the model itself)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            compact = pickle.load(f)  # noqa: S301 (the registry's own artifact)
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError):
        return None
    if not isinstance(compact, CompactModel) or getattr(compact, "format", 0) != FORMAT:
        return None
    return compact

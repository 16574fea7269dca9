"""The pure core of training one partition: features, a rolling-origin backtest of the
baseline and the ensemble (LASSO + embedding net by default), and the models to deploy.

No file or MLflow I/O here; :mod:`manymodels.steps.train` runs this per partition in parallel.

**Backtest.** ``training.backtest.origins`` windows of ``split.test_weeks`` weeks, each ending
``backtest.step_weeks`` before the next; the latest ends at the last week with known units. At
each origin the members and the baseline are fitted on the weeks before the window only (the NN
early-stops on its last ``validation_weeks``) and forecast the window ``horizon_weeks`` ahead
(every feature of a test week was known ``horizon_weeks`` earlier). Metrics are computed per
origin (``o<k>_<model>_<metric>``) and pooled over all origins (``<model>_<metric>``, what the
gate reads).

**Weights and intervals from the backtest.** The ensemble's member weights are learned
(``ensemble.weighting``) from the members' out-of-sample forecasts of all origins, and the
P10/P50/P90 intervals are calibrated on the ensemble's backtest residuals (conformal; their
coverage is measured leaving one origin out). The ensemble's backtest metrics use those pooled
weights: a handful of weights fitted on thousands of rows, a negligible optimism.

**Deployed models see every week.** After the backtest the ensemble and the baseline are fitted
again on ALL known weeks (the NN for the epochs its latest-origin fit early-stopped at), so
what is served has seen the latest data; the backtest is what vouches for it. With
``training.refit: false`` (a lean profile for very many partitions) the members of the latest
origin are deployed as fitted for the backtest instead (one fit per member less; their
``trained_through`` says they have not seen that origin's test weeks); the baseline is refitted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from manymodels.config import Settings
from manymodels.data.sources import covariate_modes
from manymodels.features import build_features, feature_columns
from manymodels.metrics import evaluate
from manymodels.models import (
    EmbeddingNetForecaster,
    Ensemble,
    HistoricalAverageBaseline,
    LassoForecaster,
)
from manymodels.models._input import check_model_input
from manymodels.models.boosting import BoostingForecaster
from manymodels.models.ensemble import fixed_weights, learn_weights
from manymodels.models.fourier import FourierForecaster
from manymodels.models.intermittent import IntermittentForecaster
from manymodels.models.intervals import ConformalIntervals, origin_coverage
from manymodels.models.level import SeriesLevelForecaster
from manymodels.pyfunc import PackedModel

__all__ = [
    "PartitionFit",
    "backtest_windows",
    "feature_settings",
    "make_members",
    "split_test",
    "train_block",
    "train_partition",
]

TIME_COL = "week"
SCORED_KEYS = [TIME_COL, "store_id", "product_id", "units"]


@dataclass
class PartitionFit:
    """A trained partition: packed models, backtest metrics, and what to log."""

    partition: str
    ensemble: PackedModel | None  # None once released (saved)
    baseline: PackedModel | None
    metrics: dict[str, float]  # "<model>_<metric>" pooled, "o<k>_<model>_<metric>" per origin
    weights: dict[str, float]
    test: pd.DataFrame  # backtest rows: week, keys, units, origin, one column per model
    example: pd.DataFrame  # two rows of model input: the MLflow input example and signature
    info: dict = field(default_factory=dict)
    features: pd.DataFrame | None = field(default=None, repr=False)  # what build_features gave

    def released(self) -> PartitionFit:
        """This fit without its models and backtest rows, once they are saved: what a worker
        sends back (the parent logs the saved folders), a few kB instead of the models."""
        return dataclasses.replace(
            self, ensemble=None, baseline=None, test=self.test.iloc[:0], features=None
        )


def feature_settings(settings: Settings) -> dict:
    """``build_features`` keyword arguments from the settings (stored with every model)."""
    f = settings.training.features
    return {
        "horizon_weeks": settings.data.horizon_weeks,
        "lags": tuple(f.lags),
        "rolling_windows": tuple(f.rolling_windows),
        "covariates": covariate_modes(settings.sources),  # as declared in pipelines/data.yaml
    }


def split_test(features: pd.DataFrame, test_weeks: int) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    """Rows with known units split into (train, test) by week; also the test weeks."""
    known = features[features["units"].notna()]
    weeks = sorted(known[TIME_COL].unique())
    if len(weeks) <= test_weeks:
        raise ValueError(
            f"only {len(weeks)} weeks with known units; need more than test_weeks={test_weeks}"
        )
    test_start = weeks[-test_weeks]
    return (
        known[known[TIME_COL] < test_start],
        known[known[TIME_COL] >= test_start],
        weeks[-test_weeks:],
    )


def backtest_windows(weeks: list, origins: int, step_weeks: int, test_weeks: int) -> list[list]:
    """The test weeks of each backtest origin, latest origin first.

    Origin ``k`` (1-based) holds the ``test_weeks`` weeks ending ``(k - 1) * step_weeks`` weeks
    before the last of ``weeks`` (sorted, distinct). The earliest origin must leave more than
    ``test_weeks`` weeks before it to train on.

    Raises:
        ValueError: a setting is not a positive integer, or there are too few weeks (the message
            says how many are needed).
    """
    given = {"origins": origins, "step_weeks": step_weeks, "test_weeks": test_weeks}
    for name, value in given.items():
        if int(value) != value or value < 1:
            raise ValueError(f"backtest {name} must be a positive integer, got {value!r}")
    need = (origins - 1) * step_weeks + 2 * test_weeks + 1
    if len(weeks) < need:
        raise ValueError(
            f"only {len(weeks)} weeks with known units; a backtest of {origins} origin(s) "
            f"{step_weeks} weeks apart with test_weeks={test_weeks} needs at least {need}: "
            "lower training.backtest.origins or split.test_weeks"
        )
    windows = []
    for k in range(origins):
        end = len(weeks) - k * step_weeks
        windows.append(list(weeks[end - test_weeks : end]))
    return windows


def make_members(settings: Settings, categorical, numeric, keys: dict | None = None) -> dict:
    """The ensemble's unfitted members, as ``training.ensemble.members`` names them (or the
    first of ``training.ensemble.overrides`` matching the partition's key values ``keys``)."""
    t = settings.training
    common = {"categorical_features": categorical, "numeric_features": numeric}
    series = [c for c in categorical if c in ("store_id", "product_id")]
    ordered = [c for c in categorical if c not in series]  # week of year: its order matters
    factories = {
        "lasso": lambda: LassoForecaster(
            alpha=t.lasso.alpha, random_state=t.random_state, **common
        ),
        "nn": lambda: EmbeddingNetForecaster(
            embedding_dim=t.nn.embedding_dim,
            hidden_units=t.nn.hidden_units,
            epochs=t.nn.epochs,
            batch_size=t.nn.batch_size,
            learning_rate=t.nn.learning_rate,
            patience=t.nn.patience,
            loss=t.nn.loss,
            scale_feature=t.nn.scale_feature or None,
            device=t.nn.device,
            random_state=t.random_state,
            **common,
        ),
        "intermittent": lambda: IntermittentForecaster(
            method=t.intermittent.method,
            alpha=t.intermittent.alpha,
            beta=t.intermittent.beta,
            horizon_weeks=settings.data.horizon_weeks,
        ),
        "seasonal": HistoricalAverageBaseline,
        **_fourier_factories(settings, common),
        "level": lambda: SeriesLevelForecaster(
            _fourier_factories(settings, common)["fourier"](),
            halflife_weeks=t.level.halflife_weeks,
            shrinkage=t.level.shrinkage,
        ),
        "gbm": lambda: BoostingForecaster(
            max_iter=t.gbm.max_iter,
            learning_rate=t.gbm.learning_rate,
            max_leaf_nodes=t.gbm.max_leaf_nodes,
            min_samples_leaf=t.gbm.min_samples_leaf,
            l2_regularization=t.gbm.l2_regularization,
            scale_feature=t.gbm.scale_feature or None,
            categorical_features=series,
            numeric_features=[*ordered, *numeric],
            random_state=t.random_state,
        ),
    }
    names = list(t.ensemble.members_for(keys or {}))
    unknown = [n for n in names if n not in factories]
    if unknown or not names:
        raise ValueError(
            f"training.ensemble.members: unknown member(s) {unknown or names}; "
            f"choose from {sorted(factories)}"
        )
    return {name: factories[name]() for name in names}


def train_partition(frame: pd.DataFrame, partition: str, settings: Settings) -> PartitionFit:
    """Backtest one partition's models, then fit the deployed ones on all known weeks (every
    network on its own; :func:`train_block` trains a block's networks together).

    Raises:
        ValueError: the partition's data cannot be backtested or fitted (the message names it).
    """
    outcome = _drive({partition: frame}, settings, batched=False)
    if isinstance(outcome[partition], Exception):
        raise outcome[partition]
    return outcome[partition]


def train_block(
    frames: dict[str, pd.DataFrame], settings: Settings, *, batched: bool = True
) -> dict[str, PartitionFit | Exception]:
    """:func:`train_partition` for many partitions at once: the embedding networks of all of
    them (every backtest origin) are trained as one batched program, then all their refits on
    every week as a second one (:mod:`manymodels.models.batched_nn`); LASSO and the baseline
    are fitted per partition as before.

    Returns:
        per partition (in the order of ``frames``): its fit, or the exception that
        :func:`train_partition` would have raised for it; one failure fails only its partition.
        Each fit's ``info["cpu_seconds"]`` has this process's CPU seconds per stage (a batched
        program's split evenly over its networks).
    """
    return _drive(frames, settings, batched=batched)


def _drive(frames: dict, settings: Settings, *, batched: bool) -> dict:
    """Run the partitions' programs (generators of fit rounds, see :func:`_program`) in lock
    step: each round's fits of every partition go to :func:`_fit_jobs` together.

    BLAS runs on one thread meanwhile: a partition's matrices are small (the fourier member's
    Gram matrix of a few thousand rows x ~100 columns), parallelism comes from one worker per
    core, and OpenBLAS's own threads cost 30x the CPU of one thread for that product on a
    loaded machine (spinning, waiting for a core); the results are the same bits."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _drive_programs(frames, settings, batched=batched)


def _drive_programs(frames: dict, settings: Settings, *, batched: bool) -> dict:
    clocks = {p: _Clock() for p in frames}
    programs = {p: _program(frame, p, settings, clocks[p]) for p, frame in frames.items()}
    results: dict = {}
    pending: dict[str, list] = {}

    def advance(p: str, sent) -> None:
        try:
            with clocks[p]("prepare_evaluate"):
                jobs = programs[p].send(sent)
        except StopIteration as done:
            results[p] = done.value
            done.value.info["cpu_seconds"] = clocks[p].seconds
        except Exception as exc:  # noqa: BLE001 (one partition's failure is its own)
            results[p] = exc
        else:
            pending[p] = jobs

    for p in programs:
        advance(p, None)
    while pending:
        round_jobs, pending = pending, {}
        owners = [p for p, jobs in round_jobs.items() for _ in jobs]
        flat = [job for jobs in round_jobs.values() for job in jobs]
        fitted = _fit_jobs(flat, [clocks[p] for p in owners], batched)
        for p in round_jobs:
            mine = [f for q, f in zip(owners, fitted, strict=True) if q == p]
            failed = next((f for f in mine if isinstance(f, Exception)), None)
            if failed is None:
                advance(p, mine)
            else:
                programs[p].close()
                results[p] = failed
    return {p: results[p] for p in programs}


class _Clock:
    """CPU seconds of this process per stage: ``with clock("features"): ...``; a span's time
    excludes the spans nested in it."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._nested: list[float] = []

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        if self._nested:
            self._nested[-1] += seconds

    @contextlib.contextmanager
    def __call__(self, stage: str):
        start = time.process_time()
        self._nested.append(0.0)
        try:
            yield
        finally:
            inner = self._nested.pop()
            self.add(stage, time.process_time() - start - inner)
            if self._nested:  # the parent excludes this span's whole time
                self._nested[-1] += inner


def _fit_jobs(jobs: list[tuple], clocks: list, batched: bool) -> list:
    """Fit every ``(estimator, X, y, eval_set)``; the embedding networks in one batched program
    when ``batched``. Returns the fitted estimators, or per job the exception its fit raised."""
    from manymodels.models import batched_nn  # noqa: PLC0415 (imports torch)

    out: list = [None] * len(jobs)
    nets = [
        i for i, job in enumerate(jobs) if batched and isinstance(job[0], EmbeddingNetForecaster)
    ]
    if nets:
        start = time.process_time()
        for i, fitted in zip(nets, batched_nn.fit_many([jobs[i] for i in nets]), strict=True):
            out[i] = fitted
        share = (time.process_time() - start) / len(nets)  # the program's time, split evenly
        for i in nets:
            clocks[i].add("fit_nn", share)
    for i, (est, X, y, eval_set) in enumerate(jobs):
        if out[i] is not None:
            continue
        start = time.process_time()
        try:
            out[i] = est.fit(X, y) if eval_set is None else est.fit(X, y, eval_set=eval_set)
        except Exception as exc:  # noqa: BLE001 (one partition's failure is its own)
            out[i] = exc
        stage = "fit_nn" if isinstance(est, EmbeddingNetForecaster) else f"fit_{type(est).__name__}"
        clocks[i].add(stage, time.process_time() - start)
    return out


def _program(frame: pd.DataFrame, partition: str, settings: Settings, clock: _Clock):
    """One partition's training as a generator: it yields the fits it needs (lists of
    ``(estimator, X, y, eval_set)``: the backtest's members, then the deployed members) and is
    sent them back fitted; it returns the :class:`PartitionFit`."""
    start = time.perf_counter()
    t = settings.training
    fs = feature_settings(settings)
    categorical, numeric = feature_columns(**fs)
    columns = [TIME_COL, *categorical, *numeric]
    with clock("features"):
        features = build_features(frame, **fs)
    known = _rows(features, features["units"].notna())
    weeks = sorted(known[TIME_COL].unique())
    try:
        windows = backtest_windows(
            weeks, t.backtest.origins, t.backtest.step_weeks, t.split.test_weeks
        )
        keys = {k: str(frame[k].iloc[0]) for k in settings.partition.keys if k in frame}
        members = make_members(settings, categorical, numeric, keys)
    except ValueError as exc:
        raise ValueError(f"partition {partition}: {exc}") from exc
    parts, fitted_at, jobs, X_tests = [], {}, [], []
    trains = [_rows(known, known[TIME_COL] < window[0]) for window in windows]
    trains = [(train[columns], train["units"]) for train in trains]  # each origin's, once
    for X_train, y_train in trains:
        jobs.append(_member_jobs(members, X_train, y_train, t.split.validation_weeks))
    fitted = yield [job for origin in jobs for job in origin.values()]
    for k, (window, (X_train, y_train)) in enumerate(zip(windows, trains, strict=True), start=1):
        test = _rows(known, known[TIME_COL].isin(window))
        fitted_at[k] = dict(
            zip(members, fitted[(k - 1) * len(members) : k * len(members)], strict=True)
        )
        with clock("fit_baseline"):
            baseline = HistoricalAverageBaseline().fit(X_train, y_train)
        scored = test[SCORED_KEYS].copy()
        scored["origin"] = k
        X_test = test[columns]  # one copy for every member's predict (none writes to its X)
        for name, est in fitted_at[k].items():
            scored[name] = est.predict(X_test)
        scored["baseline"] = baseline.predict(X_test)
        parts.append(scored)
        X_tests.append(X_test)
    # the backtest rows' model input, in scored's order: what the deployed models forecast
    X_backtest = X_tests[0] if len(X_tests) == 1 else pd.concat(X_tests)
    scored = pd.concat(parts)
    weighting = t.ensemble.weighting_for(keys)
    weights = learn_weights(scored[list(members)], scored["units"], weighting)
    scored["ensemble"] = np.clip(scored[list(members)].to_numpy() @ list(weights.values()), 0, None)
    metrics = _backtest_metrics(scored, list(members), t.intervals.coverage)
    latest = (fitted_at[1], trains[0], t.refit)
    ensemble, seen = yield from _deployed(members, latest, weights, known, columns)
    with clock("fit_baseline"):
        baseline = HistoricalAverageBaseline().fit(known[columns], known["units"])
    # the deployed models' forecasts of the backtest weeks (seen in training): the champion
    # comparison of a retrain on the same data (see manymodels.gate)
    scored["deployed_ensemble"] = _deployed_forecasts(ensemble, scored, X_backtest, t.refit)
    scored["deployed_baseline"] = baseline.predict(X_backtest)
    scored = scored.reset_index(drop=True)
    through = str(pd.Timestamp(weeks[-1]).date())
    ensemble_through = str(pd.Timestamp(seen[TIME_COL].max()).date())
    packs = {
        kind: PackedModel(
            model,
            kind,
            partition,
            fs,
            columns,
            intervals=ConformalIntervals(t.intervals.coverage).fit(scored["units"], scored[kind]),
            trained_through=last,
        )
        for kind, model, last in (
            ("ensemble", ensemble, ensemble_through),
            ("baseline", baseline, through),
        )
    }
    _link_packs(packs, known)
    info = {
        "train_rows": len(known),
        "test_rows": len(scored),
        "series": _series_count(frame),
        "train_weeks": f"{pd.Timestamp(weeks[0]).date()} .. {through}",
        "test_weeks": sorted({str(pd.Timestamp(w).date()) for win in windows for w in win}),
        "origins": [
            {"origin": k, "weeks": [str(pd.Timestamp(w).date()) for w in (win[0], win[-1])]}
            for k, win in enumerate(windows, start=1)
        ],
        "seconds": time.perf_counter() - start,
    }
    return PartitionFit(
        partition,
        packs["ensemble"],
        packs["baseline"],
        metrics,
        weights,
        scored,
        known[columns].head(2).reset_index(drop=True),
        info,
        features,
    )


def _rows(frame: pd.DataFrame, mask) -> pd.DataFrame:
    """``frame[mask]``, as a slice where ``mask`` selects one contiguous run of rows: the
    features are sorted by week, so a window of weeks (a training prefix, a backtest's test
    weeks, the known weeks) is one. The same rows, index labels and values; a slice shares
    its columns (copy-on-write) where a boolean selection copies every one of them (about
    1.7 ms against 0.1 ms on a partition of 4,200 rows with 8 string columns)."""
    mask = np.asarray(mask, dtype=bool)
    hits = np.flatnonzero(mask)
    if len(hits) == 0 or hits[-1] - hits[0] + 1 != len(hits):
        return frame[mask]
    return frame.iloc[hits[0] : hits[-1] + 1]


def _link_packs(packs: dict, known: pd.DataFrame) -> None:
    """Give both packed models the series they were trained on (scoring reports the series a
    model never saw) and the ensemble its baseline fallback (new series, short histories)."""
    series = _series_names(known)
    for pack in packs.values():
        pack.series = series
    packs["ensemble"].fallback = packs["baseline"]


def _series_codes(frame: pd.DataFrame) -> tuple[np.ndarray, list]:
    """One code per row for its store x product pair (-1: a key missing), and each key
    column's distinct values (the codes are ``store * len(products) + product``)."""
    (stores, s_values), (products, p_values) = (
        pd.factorize(frame[key]) for key in ("store_id", "product_id")
    )
    codes = stores.astype(np.int64) * len(p_values) + products
    codes[(stores < 0) | (products < 0)] = -1
    return codes, [s_values, p_values]


def _series_count(frame: pd.DataFrame) -> int:
    """``frame.groupby(["store_id", "product_id"]).ngroups`` (pairs without a missing key)."""
    codes, _ = _series_codes(frame)
    return int(np.unique(codes[codes >= 0]).size)


def _series_names(known: pd.DataFrame) -> list[str]:
    """The sorted ``"<store>/<product>"`` of every pair in ``known``, as strings."""
    keys = known[["store_id", "product_id"]]
    if keys.isna().to_numpy().any():  # how astype(str) spells a missing key: as it did
        trained = keys.drop_duplicates().astype(str)
        return sorted(trained["store_id"] + "/" + trained["product_id"])
    codes, (stores, products) = _series_codes(keys)
    pairs = np.unique(codes)
    stores = pd.Index(stores).astype(str)[pairs // len(products)]
    products = pd.Index(products).astype(str)[pairs % len(products)]
    return sorted(f"{s}/{p}" for s, p in zip(stores, products, strict=True))


def _deployed(members: dict, latest: tuple, weights: dict, known, columns: list):
    """The deployed ensemble and the rows its members saw: refitted on every known week (a
    round of fits, yielded), or without ``training.refit`` the latest origin's fits.
    ``latest``: that origin's ``(fitted members, (X, y) they were fitted on, training.refit)``
    (its model input reused: not selected from ``known`` again)."""
    fitted_latest, (X_seen, y_seen), refit = latest
    if not refit:
        return _fitted_ensemble(members, fitted_latest, weights, X_seen, y_seen), X_seen
    final_members = _final_members(members, fitted_latest)
    final = yield [
        (clone(est), known[columns], known["units"], None) for est in final_members.values()
    ]
    fitted = dict(zip(final_members, final, strict=True))
    return _fitted_ensemble(final_members, fitted, weights, known[columns], known["units"]), known


def _deployed_forecasts(ensemble, scored: pd.DataFrame, X_backtest, refit: bool):
    """The deployed ensemble's forecasts of the backtest rows (``X_backtest``: their model
    input, in ``scored``'s order). Without a refit its members are the latest origin's, whose
    forecasts of that origin's rows the backtest already has (the same up to float rounding):
    only the other origins' rows are predicted."""
    if refit:
        return ensemble.predict(X_backtest)
    latest = (scored["origin"] == 1).to_numpy()
    deployed = scored["ensemble"].to_numpy(dtype=float, copy=True)
    if not latest.all():
        deployed[~latest] = ensemble.predict(X_backtest[~latest])
    return deployed


def _backtest_metrics(scored: pd.DataFrame, members: list[str], coverage: float) -> dict:
    """Pooled and per-origin metrics of the backtest forecasts, and the intervals' coverage."""
    models = ("ensemble", *members, "baseline")
    metrics = {
        f"{model}_{name}": value
        for model in models
        for name, value in evaluate(scored["units"], scored[model]).items()
    }
    for k, group in scored.groupby("origin"):
        for model in ("ensemble", "baseline"):
            for name, value in evaluate(group["units"], group[model]).items():
                metrics[f"o{k}_{model}_{name}"] = value
    for model in ("ensemble", "baseline"):
        cover = origin_coverage(scored, model, coverage)
        metrics[f"{model}_coverage"] = cover["coverage"]
        metrics[f"{model}_interval_width"] = cover["width"]
    return metrics


def _member_jobs(members: dict, X: pd.DataFrame, y: pd.Series, validation_weeks: int) -> dict:
    """Each member's fit on ``X`` as ``(clone, X, y, eval_set)``; one with early stopping
    (``eval_set``) holds out the last ``validation_weeks`` weeks for it."""
    weeks = np.sort(X[TIME_COL].unique())
    if len(weeks) <= validation_weeks:
        raise ValueError(
            f"{len(weeks)} training weeks leave none after validation_weeks={validation_weeks}"
        )
    is_val = (X[TIME_COL] >= weeks[-validation_weeks]).to_numpy()
    y = y.to_numpy(dtype=float)
    jobs = {}
    for name, template in members.items():
        est = clone(template)
        if "eval_set" in inspect.signature(est.fit).parameters:
            fit_X, val_X = _rows(X, ~is_val), _rows(X, is_val)
            jobs[name] = (est, fit_X, y[~is_val], (val_X, y[is_val]))
        else:
            jobs[name] = (est, X, y, None)
    return jobs


def _fitted_ensemble(templates: dict, fitted: dict, weights: dict, X, y) -> Ensemble:
    """What ``Ensemble(templates, weights=weights).fit(X, y)`` gives, from members fitted
    elsewhere (in a batched round): fixed weights, every member fitted on all of ``X``."""
    ensemble = Ensemble(templates, time_col=TIME_COL, weights=weights)
    check_model_input(ensemble, X, y, reset=True)  # feature names, as fit records them
    ensemble.weights_ = fixed_weights(weights, list(templates))
    ensemble.members_ = fitted
    ensemble.validation_metrics_ = {}
    return ensemble


def _final_members(members: dict, latest: dict) -> dict:
    """Members for the refit on all weeks: a member that early-stopped trains, with nothing held
    out, for the epochs its latest-origin fit chose."""
    final = {}
    for name, est in members.items():
        best = getattr(latest[name], "best_epoch_", None)
        final[name] = (
            clone(est).set_params(epochs=int(best), validation_fraction=0.0)
            if best is not None and "validation_fraction" in est.get_params()
            else clone(est)
        )
    return final


def _fourier_factories(settings: Settings, common: dict) -> dict:
    """The ``fourier`` (Lasso) and ``glm`` (Poisson) members of :func:`make_members`;
    ``interact: [known]`` stands for every covariate declared known in advance."""
    t = settings.training
    f = t.fourier
    modes = covariate_modes(settings.sources)
    interact = [
        name
        for entry in f.interact
        for name in ([c for c, m in modes.items() if m == "known"] if entry == "known" else [entry])
    ]
    shared = {"harmonics": f.harmonics, "by": f.by, "interact": tuple(dict.fromkeys(interact))}
    shared |= common
    return {
        "fourier": lambda: FourierForecaster(
            loss="lasso", alpha=f.lasso_alpha, random_state=t.random_state, **shared
        ),
        "glm": lambda: FourierForecaster(loss="poisson", alpha=f.poisson_alpha, **shared),
    }

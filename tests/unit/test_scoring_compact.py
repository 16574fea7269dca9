"""Compact scoring forms: the forecasts of real trained champions (every member kind, the
baseline and the fallback packed inside an ensemble) equal those of the models themselves."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from manymodels.data.partition import split_partitions
from manymodels.features import build_features
from manymodels.models import EmbeddingNetForecaster, LassoForecaster
from manymodels.pyfunc import PackedModel
from manymodels.scoring import INTERVAL_COLUMNS, predict_future
from manymodels.scoring_compact import (
    COMPACT_FILE,
    CompactModel,
    NotCompact,
    Rows,
    compile_packed,
    load_compact,
    save_compact,
)
from manymodels.training import feature_settings, train_partition

ALL = ["lasso", "fourier", "glm", "nn", "gbm", "intermittent", "seasonal", "level"]
# float64 members agree to rounding; the float32 network as numpy and torch round it
RTOL, ATOL = 1e-5, 1e-8


@pytest.fixture(scope="module")
def fits(tmp_path_factory, config_dir, _conditioned):
    """A slow and a fast partition trained with every member kind (few epochs and trees)."""
    from manymodels.config import load_settings

    work = tmp_path_factory.mktemp("work")
    settings = load_settings(
        config_dir,
        "dev",
        [
            f"project.workdir={work}",
            "training.gbm.max_iter=15",
            "training.nn.epochs=3",
            "training.backtest.origins=1",
            "training.plots=false",
        ],
    ).replace({"training.ensemble.members": ALL, "training.ensemble.overrides": []})
    parts = split_partitions(_conditioned[0], tuple(settings.partition.keys))
    slow = next(p for p in parts if p.endswith("slow"))
    fast = next(p for p in parts if p.endswith("fast"))
    return {p: (train_partition(parts[p], p, settings), parts[p]) for p in (slow, fast)}, settings


def _frames_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for column in want:
        if pd.api.types.is_float_dtype(want[column]):
            np.testing.assert_allclose(got[column], want[column], rtol=RTOL, atol=ATOL)
        else:
            pd.testing.assert_series_equal(got[column], want[column], check_dtype=False)


def test_every_member_kind_forecasts_as_the_model_itself(fits):
    fitted, settings = fits
    for pid, (fit, frame) in fitted.items():
        packed = fit.ensemble
        assert set(packed.estimator.members_) == set(ALL)
        compact = compile_packed(packed)
        assert [name for name, *_ in compact.members] == list(packed.estimator.members_)
        features = build_features(frame, **packed.features)
        rows = features
        # each member on every row (history and future): the members' own forecasts
        want = packed.estimator.predict_members(rows[packed.columns])
        for name, member, _ in compact.members:
            np.testing.assert_allclose(
                member.predict(Rows(rows)),
                want[name],
                rtol=RTOL,
                atol=ATOL,
                err_msg=f"{pid} {name}",
            )
        _frames_equal(compact.predict_frame(rows), packed.predict_frame(rows))
        # the batch path's output: P10/P50/P90, new series by the packed baseline, seen series
        got = predict_future(frame, compact, settings.data.min_history_weeks)
        ref = predict_future(frame, packed, settings.data.min_history_weeks)
        _frames_equal(got, ref)
        assert got[list(INTERVAL_COLUMNS)].notna().all().all()
        # the baseline champion (a partition whose ensemble fails the gate)
        base = compile_packed(fit.baseline)
        _frames_equal(
            predict_future(frame, base, settings.data.min_history_weeks),
            predict_future(frame, fit.baseline, settings.data.min_history_weeks),
        )


def test_young_series_take_the_compact_fallback(fits):
    fitted, settings = fits
    fit, frame = next(iter(fitted.values()))
    # every series is "new" when the minimum history is longer than the data
    got = predict_future(frame, compile_packed(fit.ensemble), 10_000)
    want = predict_future(frame, fit.ensemble, 10_000)
    assert set(got["model_kind"]) == {"baseline (new series)"}
    _frames_equal(got, want)


def test_mse_networks_and_log_target_lasso_match(fits):
    """The variants the defaults do not train: the network on the MSE loss (log target) and
    without a scale feature, a Lasso on a log target."""
    fitted, _ = fits
    fit, frame = next((f, fr) for p, (f, fr) in fitted.items() if p.endswith("fast"))
    packed = fit.ensemble
    features = build_features(frame, **packed.features)
    known = features[features["units"].notna()]
    X, y = known[packed.columns], known["units"]
    lasso = packed.estimator.members_["lasso"]
    for est in (
        EmbeddingNetForecaster(epochs=2, loss="mse", target_transform="log1p", random_state=0,
                               categorical_features=lasso.categorical_features_,
                               numeric_features=lasso.numeric_features_),
        EmbeddingNetForecaster(epochs=2, loss="poisson", scale_feature=None, random_state=0,
                               categorical_features=lasso.categorical_features_,
                               numeric_features=lasso.numeric_features_),
        LassoForecaster(target_transform="log1p", categorical_features=lasso.categorical_features_,
                        numeric_features=lasso.numeric_features_),
    ):  # fmt: skip
        est.fit(X, y)
        compact = compile_packed(PackedModel(est, "ensemble", "p", packed.features, packed.columns))
        np.testing.assert_allclose(compact.predict(features), est.predict(features[packed.columns]),
                                   rtol=RTOL, atol=ATOL)  # fmt: skip


def test_saved_with_the_model_and_read_back(fits, tmp_path):
    fitted, _ = fits
    fit, frame = next(iter(fitted.values()))
    fit.ensemble.save(str(tmp_path / "packed.joblib"))  # what training writes
    compact = load_compact(tmp_path / COMPACT_FILE)
    assert isinstance(compact, CompactModel)
    features = build_features(frame, **fit.ensemble.features)
    _frames_equal(compact.predict_frame(features), fit.ensemble.predict_frame(features))
    # a file of another format or an unreadable one: none (the caller loads the model)
    compact.format = 0
    (tmp_path / COMPACT_FILE).write_bytes(pickle.dumps(compact))
    assert load_compact(tmp_path / COMPACT_FILE) is None
    (tmp_path / COMPACT_FILE).write_bytes(b"not a pickle")
    assert load_compact(tmp_path / COMPACT_FILE) is None
    assert load_compact(tmp_path / "missing.pkl") is None


class Custom:
    def predict(self, X):
        return np.ones(len(X))


def test_a_member_without_a_compact_form_is_not_compiled(tmp_path):
    packed = PackedModel(Custom(), "baseline", "p", {}, ["week"])
    with pytest.raises(NotCompact, match="Custom"):
        compile_packed(packed)
    assert save_compact(packed, tmp_path) is None
    packed.save(str(tmp_path / "packed.joblib"))
    assert not (tmp_path / COMPACT_FILE).exists()


def test_missing_and_non_finite_columns_are_clear_errors(fits):
    fitted, _ = fits
    fit, frame = next(iter(fitted.values()))
    compact = compile_packed(fit.ensemble)
    features = build_features(frame, **fit.ensemble.features)
    with pytest.raises(ValueError, match="needs feature columns"):
        compact.predict(features.drop(columns=["trend"]))
    broken = features.assign(trend=np.nan)
    with pytest.raises(ValueError, match="trend"):
        compact.predict(broken)


def test_feature_settings_travel_with_the_compact_form(fits):
    fitted, settings = fits
    fit, _ = next(iter(fitted.values()))
    assert compile_packed(fit.ensemble).features == feature_settings(settings)


def test_the_members_and_the_compact_forms_share_one_set_of_kernels():
    from manymodels import kernels, scoring_compact
    from manymodels.models import _input, fourier, intervals

    assert _input.signed_log1p is kernels.signed_log1p is scoring_compact.signed_log1p
    assert _input.signed_expm1 is kernels.signed_expm1 is scoring_compact.signed_expm1
    assert intervals.interval_bounds is kernels.interval_bounds
    assert scoring_compact.interval_bounds is kernels.interval_bounds
    assert fourier.fourier_terms is kernels.fourier_terms is scoring_compact.fourier_terms
    x = np.random.default_rng(0).normal(0, 50, 500)
    x[:4] = [0.0, -0.0, 1e-300, -1e6]
    np.testing.assert_allclose(kernels.signed_expm1(kernels.signed_log1p(x)), x, rtol=1e-12)
    bounds = kernels.interval_bounds(x, ("p10", "p90"), (-1.3, 1.7))
    assert (bounds["p10"] >= 0).all() and (bounds["p90"] >= bounds["p10"]).all()
    angle = np.linspace(0, 7, 60)
    terms = kernels.fourier_terms(np.sin(angle), np.cos(angle), 3)
    np.testing.assert_allclose(terms["sin3"], np.sin(3 * angle), atol=1e-12)
    np.testing.assert_allclose(terms["cos2"], np.cos(2 * angle), atol=1e-12)


def test_scoring_a_compact_form_imports_neither_scikit_learn_mlflow_nor_torch(fits, tmp_path):
    """The score step's modules and a compact champion's forecasts, in a fresh process: the
    imports of scikit-learn, SciPy, MLflow and torch (~2 CPU-s) are left out. (A GBM member's
    trees are walked by scikit-learn's compiled predictor: it alone imports scikit-learn.)"""
    import subprocess
    import sys

    from manymodels.scoring_compact import Trees

    fitted, _ = fits
    fit, frame = next(p for p in fitted.values() if p[0].ensemble.kind == "ensemble")
    compact = compile_packed(fit.ensemble)
    compact.members = [m for m in compact.members if not isinstance(m[1], Trees)]
    assert {type(m).__name__ for _, m, _ in compact.members} >= {"Linear", "Net", "Levels"}
    (tmp_path / COMPACT_FILE).write_bytes(pickle.dumps(compact))
    features = build_features(frame, **fit.ensemble.features)
    features.to_pickle(tmp_path / "features.pkl")
    want = compact.predict_frame(features)
    code = (
        "import sys, pandas as pd\n"
        "import manymodels.steps.score\n"
        "from manymodels.scoring_compact import load_compact\n"
        f"folder = {str(tmp_path)!r}\n"
        "m = load_compact(folder + '/compact.pkl')\n"
        "m.predict_frame(pd.read_pickle(folder + '/features.pkl')).to_pickle(folder + '/got.pkl')\n"
        "print(sorted(n for n in ('sklearn', 'scipy', 'mlflow', 'torch') if n in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "got.pkl"), want, check_exact=True)

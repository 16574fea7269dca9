"""Input drift: a reference profile of a model's training inputs, and recent inputs against it.

Demand data are seasonal, so a plain "last 8 weeks vs all of training" comparison flags every
winter as drift. The profile therefore keeps, per numeric feature, quantiles per season bucket
(four-week blocks of the year); the reference a window is compared with is the mixture of the
buckets its rows fall in, weighted like the window. Per numeric feature: the population stability
index (PSI) on the reference's deciles and a two-sample Kolmogorov-Smirnov test (asymptotic
p-value). Per categorical feature: the shift in category shares (total variation distance, new
categories included). Calendar columns (trend, year_sin, year_cos) move by construction and are
not profiled, nor is ``filled_share`` (how much history a row had). The profile is taken on the
training rows with their full history where there are enough of them: the first weeks of a
series, with lags filled in, look nothing like what a model sees later; and only the last two
years of them, since levels grow and shrink over the years. A feature is in alert when its PSI is
above ``psi_alert`` AND the KS test finds a shift of at least ``ks_statistic`` at ``ks_pvalue``:
either alone is noisy on the few hundred rows a partition has per window.
"""

from __future__ import annotations

import json
import math
import os
from json.encoder import encode_basestring_ascii
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import kolmogorov

from manymodels.config import DriftBars, DriftMonitorSettings
from manymodels.features import HISTORY_PREFIXES, build_features, feature_columns
from manymodels.io import write_text

__all__ = [
    "PROFILE_FILE",
    "SKIP",
    "bars_for",
    "compare",
    "current_window",
    "feature_type",
    "profile",
    "season",
    "training_profile",
    "write_profile",
]

PROFILE_FILE = "drift_profile.json"
SKIP = ("trend", "year_sin", "year_cos", "week_of_year", "filled_share")
LEVELS = np.linspace(0, 1, 21)  # quantiles kept per bucket
BUCKET_WEEKS = 4
MIN_FULL_ROWS = 200
REFERENCE_WEEKS = 104


def season(week: pd.Series) -> np.ndarray:
    """The season bucket (0..13) of each week: four-week blocks of the ISO year."""
    return (_iso_week(pd.to_datetime(week)) - 1) // BUCKET_WEEKS


def _iso_week(week: pd.Series) -> np.ndarray:
    """The ISO week number of each date, on NumPy days (pandas' ``isocalendar`` builds a frame
    of three columns per call); tz-aware or missing dates take pandas' path."""
    if not isinstance(week.dtype, np.dtype) or week.isna().any():
        return week.dt.isocalendar().week.to_numpy(dtype=int)
    days = week.to_numpy().astype("datetime64[D]")
    monday0 = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    thursday = days + (3 - monday0)  # an ISO week belongs to the year of its Thursday
    first = thursday.astype("datetime64[Y]").astype("datetime64[D]")
    return (thursday - first).astype(np.int64) // 7 + 1


def profile(
    features: pd.DataFrame, numeric: list[str], categorical: list[str], *, extra: dict | None = None
) -> dict:
    """The reference profile of ``features`` (the rows a model was trained on).

    Args:
        features: model input rows with a ``week`` column.
        numeric: numeric feature columns (calendar columns in :data:`SKIP` are left out).
        categorical: categorical feature columns.
        extra: more keys stored with the profile (e.g. the feature settings).

    Returns:
        A JSON-ready dict: per numeric feature its overall deciles and per-season quantiles with
        row counts, per categorical feature its category shares.

    Raises:
        ValueError: ``features`` is empty or lacks a column.
    """
    missing = [c for c in ["week", *numeric, *categorical] if c not in features.columns]
    if missing:
        raise ValueError(f"drift profile: column(s) {missing} missing from the training rows")
    if features.empty:
        raise ValueError("drift profile: no training rows to profile")
    buckets = season(features["week"])
    out: dict = {"rows": len(features), "numeric": {}, "categorical": {}, **(extra or {})}
    cols = [c for c in numeric if c not in SKIP]
    out["numeric"] = _numeric_profiles(features, cols, buckets)
    for col in categorical:
        shares = features[col].astype(str).value_counts(normalize=True)
        out["categorical"][col] = {str(k): round(float(v), 6) for k, v in shares.items()}
    return out


def compare(ref: dict, current: pd.DataFrame, settings: DriftMonitorSettings) -> list[dict]:
    """Per feature of ``ref``: PSI, KS statistic and p-value (numeric) or share shift.

    Returns:
        One dict per feature: ``feature``, ``kind``, the statistics, ``status`` (ok, warn,
        alert or "no reference" when the window's seasons were never seen in training).
    """
    rows = []
    buckets = season(current["week"])
    for col, spec in ref.get("numeric", {}).items():
        if col not in current.columns:
            rows.append({"feature": col, "kind": "numeric", "status": "missing"})
            continue
        stats = _numeric(spec, current[col], buckets, settings.min_rows)
        r = {"feature": col, "kind": "numeric", **stats}
        rows.append(r)
        if "psi" in r:
            bars = bars_for(col, settings)
            ks = r["ks_pvalue"] < settings.ks_pvalue and r["ks"] > bars.ks_statistic
            r["status"] = _status(r["psi"] > bars.psi_alert and ks, r["psi"] > bars.psi_warn)
    for col, shares in ref.get("categorical", {}).items():
        if col not in current.columns:
            rows.append({"feature": col, "kind": "categorical", "status": "missing"})
            continue
        now = current[col].astype(str).value_counts(normalize=True).to_dict()
        keys = set(shares) | set(now)
        tvd = 0.5 * sum(abs(now.get(k, 0.0) - shares.get(k, 0.0)) for k in keys)
        new = sorted(set(now) - set(shares))
        limit = settings.category_shift_alert
        rows.append(
            {
                "feature": col,
                "kind": "categorical",
                "share_shift": round(tvd, 4),
                "new_categories": new[:10],
                "status": _status(tvd > limit, tvd > limit / 2),
            }
        )
    return rows


def feature_type(feature: str) -> str:
    """``history`` (lags and rolling means of the target) or ``covariate``."""
    return "history" if feature.startswith(HISTORY_PREFIXES) else "covariate"


def bars_for(feature: str, settings: DriftMonitorSettings) -> DriftBars:
    """The PSI/KS bars of a numeric feature: its type's (``history``/``covariates``), else the
    section's own."""
    own = settings.history if feature_type(feature) == "history" else settings.covariates
    if own is not None:
        return own
    return DriftBars(settings.psi_warn, settings.psi_alert, settings.ks_statistic)


def _numeric(spec: dict, values: pd.Series, buckets: np.ndarray, min_rows: int) -> dict:
    x = values.to_numpy(dtype=float)
    ok = ~np.isnan(x)
    x, b = x[ok], buckets[ok]
    seasons = spec["seasons"]
    weights = {s: int((b == int(s)).sum()) for s in seasons if (b == int(s)).any()}
    if not weights or len(x) < min_rows:
        why = "no reference" if not weights else f"too few rows (< {min_rows})"
        return {"status": why, "rows": int(len(x))}
    total = sum(weights.values())

    def cdf(points: np.ndarray) -> np.ndarray:  # the reference mixture, weighted like the window
        return sum(w / total * _cdf(seasons[s]["q"], points) for s, w in weights.items())

    edges = np.asarray(spec["edges"], dtype=float)
    inner = edges[1:-1]
    ref_p = np.diff(np.concatenate([[0.0], cdf(inner), [1.0]]))
    cur_p = np.bincount(np.searchsorted(inner, x, side="right"), minlength=len(inner) + 1) / len(x)
    # half a row of smoothing per bin: an empty bin in a small window is not infinite drift
    cur_p = (cur_p * len(x) + 0.5) / (len(x) + 0.5 * len(cur_p))
    ref_p = np.clip(ref_p, 1e-4, None)
    psi = float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))
    xs = np.sort(x)
    grid = np.unique(np.concatenate([xs, *(np.asarray(seasons[s]["q"]) for s in weights)]))
    cur_cdf = np.searchsorted(xs, grid, side="right") / len(xs)
    ks = float(np.max(np.abs(cur_cdf - cdf(grid))))
    n_ref = sum(seasons[s]["n"] for s in weights)
    n_eff = n_ref * len(xs) / (n_ref + len(xs))
    return {
        "psi": round(psi, 4),
        "ks": round(ks, 4),
        "ks_pvalue": float(kolmogorov(math.sqrt(n_eff) * ks)) if ks > 0 else 1.0,
        "mean": round(float(xs.mean()), 4),
        "reference_median": round(float(_median(seasons, weights)), 4),
        "rows": int(len(xs)),
    }


def _cdf(quantiles: list[float], points: np.ndarray) -> np.ndarray:
    """A CDF from quantiles at :data:`LEVELS`: steps at repeated values, linear in between."""
    q = np.asarray(quantiles, dtype=float)
    values, last = np.unique(q[::-1], return_index=True)
    levels = LEVELS[::-1][last]  # the highest level at each distinct value
    if len(values) == 1:
        return (points >= values[0]).astype(float)
    out = np.interp(points, values, levels)
    return np.where(points < values[0], 0.0, out)


def _median(seasons: dict, weights: dict) -> float:
    return float(np.average([seasons[s]["q"][10] for s in weights], weights=list(weights.values())))


def _status(alert: bool, warn: bool) -> str:
    return "alert" if alert else "warn" if warn else "ok"


def _round(values: np.ndarray) -> np.ndarray:
    """``values`` to 6 significant digits as ``float(f"{v:.6g}")`` gives them; whole numbers
    under a million (most quantiles of counts and flags) are their own rounding, unformatted."""
    values = np.asarray(values, dtype=float)
    out = values.ravel().copy()
    with np.errstate(invalid="ignore"):
        odd = np.flatnonzero(~((np.abs(out) < 1e6) & (out == np.trunc(out))))
    distinct, back = np.unique(out[odd], return_inverse=True)  # quantiles repeat: each once
    out[odd] = np.array([float(f"{v:.6g}") for v in distinct.tolist()])[back]
    return out.reshape(values.shape)


class _NotPlain(TypeError):
    """A value :func:`_profile_text` leaves to the JSON module."""


def _profile_text(data: dict) -> str:
    """The json module's text of a profile (indent 2, sorted keys, NaN kept), by the same rules
    but with each list of floats joined at once: the JSON module's indented encoder is pure
    Python, one call per value. Any value other than dicts with text keys, lists, text,
    numbers, booleans and None goes to the json module whole."""
    try:
        return _plain(data, "\n") + "\n"
    except _NotPlain:
        return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"  # keeps NaN


def _plain(value, pad: str) -> str:
    kind = type(value)
    if kind in _SCALARS:
        return _SCALARS[kind](value)
    inner = pad + "  "
    if kind is dict:
        if not set(map(type, value)) <= {str}:
            raise _NotPlain(value)
        brackets = "{}"
        parts = [
            f"{encode_basestring_ascii(k)}: {_plain(v, inner)}" for k, v in sorted(value.items())
        ]
    elif kind is list or kind is tuple:
        brackets = "[]"
        if set(map(type, value)) <= {float} and all(map(math.isfinite, value)):
            parts = list(map(float.__repr__, value))
        else:
            parts = [_plain(v, inner) for v in value]
    else:
        raise _NotPlain(value)
    if not parts:
        return brackets
    return brackets[0] + inner + ("," + inner).join(parts) + pad + brackets[1]


def _json_float(value: float) -> str:
    if math.isfinite(value):
        return float.__repr__(value)
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


_SCALARS = {
    str: encode_basestring_ascii,
    float: _json_float,
    int: int.__repr__,
    bool: lambda v: "true" if v else "false",
    type(None): lambda _: "null",
}


def _numeric_profiles(features: pd.DataFrame, cols: list[str], buckets: np.ndarray) -> dict:
    """Per numeric column: its deciles (``edges``) and per-season quantiles with row counts.

    The columns without missing values are done together, one ``np.quantile`` over all of them
    per season (a column's values in the same order as alone: the same quantiles, bit for bit);
    a column with missing values alone, without them."""
    if not cols:
        return {}
    values = np.column_stack([features[c].to_numpy(dtype=float) for c in cols])
    missing = np.isnan(values).any(axis=0)
    out: dict = {}
    whole = [j for j in range(len(cols)) if not missing[j]]
    if whole:
        block = values[:, whole]
        edges = np.quantile(block, np.linspace(0, 1, 11), axis=0)
        seasons: dict = {j: {} for j in whole}
        for b in np.unique(buckets):
            rows = buckets == b
            q = _round(np.quantile(block[rows], LEVELS, axis=0)).T.tolist()
            n = int(rows.sum())
            for i, j in enumerate(whole):
                seasons[j][str(b)] = {"n": n, "q": q[i]}
        for i, j in enumerate(whole):
            out[j] = {"edges": _round(np.unique(edges[:, i])).tolist(), "seasons": seasons[j]}
    for j in (j for j in range(len(cols)) if missing[j]):
        column = values[:, j]
        ok = ~np.isnan(column)
        out[j] = {
            "edges": _round(np.unique(np.quantile(column[ok], np.linspace(0, 1, 11)))).tolist(),
            "seasons": {
                str(b): {
                    "n": int((ok & (buckets == b)).sum()),
                    "q": _round(np.quantile(column[ok & (buckets == b)], LEVELS)).tolist(),
                }
                for b in np.unique(buckets[ok])
            },
        }
    return {cols[j]: out[j] for j in range(len(cols))}


def training_profile(
    frame: pd.DataFrame,
    feature_settings: dict,
    test_weeks: list[str],
    features: pd.DataFrame | None = None,
) -> dict:
    """The profile of the rows a partition's models were trained on (before the test weeks);
    ``features``: ``build_features(frame, **feature_settings)`` when the caller has it."""
    if features is None:
        features = build_features(frame, **feature_settings)
    first_test = min(pd.to_datetime(test_weeks))
    week = features["week"]
    rows = (features["units"].notna() & (week < first_test)).to_numpy()
    full = rows & (features["filled_share"] == 0).to_numpy()
    rows = full if full.sum() >= MIN_FULL_ROWS else rows
    # the last two years only: levels grow and shrink, and years-old weeks are no reference
    rows = rows & (week >= week[rows].max() - pd.Timedelta(weeks=REFERENCE_WEEKS)).to_numpy()
    categorical, numeric = feature_columns(**feature_settings)
    wanted = dict.fromkeys(["week", *numeric, *categorical])  # one copy of the rows profiled
    train = features.loc[rows, [c for c in wanted if c in features.columns]]
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in feature_settings.items()}
    return profile(
        train,
        list(numeric),
        [c for c in categorical if c not in SKIP],
        extra={"feature_settings": settings, "trained_until": str(first_test.date())},
    )


def write_profile(frame: pd.DataFrame, fit, folder) -> None:
    """Write a fitted partition's profile into its artifacts and into each model folder, so
    the profile travels with a registered version (also into prod)."""
    built = getattr(fit, "features", None)  # the frame training built, not built again
    data = training_profile(frame, fit.ensemble.features, fit.info["test_weeks"], built)
    text = _profile_text(data)  # encoded once for the three files
    first = write_text(text, Path(folder) / "artifacts" / PROFILE_FILE)
    for sub in ("ensemble", "baseline"):
        try:  # the same bytes: a hard link where the file system has them
            os.link(first, Path(folder) / sub / PROFILE_FILE)
        except OSError:
            write_text(text, Path(folder) / sub / PROFILE_FILE)


def current_window(frame: pd.DataFrame, ref: dict, weeks: int) -> pd.DataFrame:
    """The recent inputs of one partition: its last ``weeks`` weeks with actuals and the weeks
    being forecast, built with the model's own feature settings."""
    features = build_features(frame, **ref["feature_settings"])
    known = sorted(features.loc[features["units"].notna(), "week"].unique())
    start = known[-weeks] if len(known) >= weeks else features["week"].min()
    return features[features["week"] >= start]

"""The estimators' numeric kernels that scoring needs too, on NumPy alone.

Importing ``manymodels.models`` imports scikit-learn and SciPy (~0.8 CPU-s at the start of every
scoring process), which scoring with compact forms (:mod:`manymodels.scoring_compact`) never
needs; the members (``models._input``, ``models.intervals``, ``models.fourier``) and the compact
forms both use these, so a forecast is computed by the same expressions either way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fourier_terms", "interval_bounds", "interval_scale", "signed_expm1", "signed_log1p"]


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: log1p for counts that stays defined for negative units."""
    return np.sign(values) * np.log1p(np.abs(values))


def signed_expm1(values: np.ndarray) -> np.ndarray:
    """The inverse of :func:`signed_log1p`."""
    return np.sign(values) * np.expm1(np.abs(values))


def interval_scale(p: np.ndarray) -> np.ndarray:
    """The residual scale at point forecast ``p`` (>= 0): count noise grows like its root."""
    return np.sqrt(1.0 + p)


def interval_bounds(y_pred, names, quantiles) -> dict[str, np.ndarray]:
    """``{name: bound}`` for point forecasts ``y_pred`` and the standardised residual
    ``quantiles`` a :class:`~manymodels.models.intervals.ConformalIntervals` fitted (one per
    name)."""
    p = np.clip(np.asarray(y_pred, dtype=float), 0, None)
    s = interval_scale(p)
    return {name: np.clip(p + q * s, 0, None) for name, q in zip(names, quantiles, strict=True)}


def fourier_terms(year_sin, year_cos, harmonics: int) -> dict[str, np.ndarray]:
    """``sin(k theta)`` and ``cos(k theta)`` for ``k = 1..harmonics`` from ``sin``/``cos`` of
    ``theta`` (the week's angle in the year), by complex powers: no calendar needed."""
    z = np.asarray(year_cos, dtype=float) + 1j * np.asarray(year_sin, dtype=float)
    terms, power = {}, np.ones_like(z)
    for k in range(1, harmonics + 1):
        power = power * z
        terms[f"sin{k}"], terms[f"cos{k}"] = power.imag, power.real
    return terms

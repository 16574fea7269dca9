"""One MLflow pyfunc model per partition: the fitted estimator plus how to build its features.

The wrapper stores the estimator (an :class:`~manymodels.models.Ensemble` or the baseline) with
joblib, and the feature settings it was trained with, so scoring builds features the way the
model expects even after ``pipelines/training.yaml`` changed. Its input is the feature frame from
:func:`manymodels.features.build_features`; its output is one non-negative forecast per row,
with P10/P50/P90 bounds beside it (a frame) when the model carries conformal intervals.
Only this module and :mod:`manymodels.registry` import MLflow.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import mlflow.pyfunc
import numpy as np
import pandas as pd

__all__ = ["ForecastModel", "PackedModel"]


@dataclass
class PackedModel:
    """What the pyfunc carries: the estimator, its kind, and its feature settings."""

    estimator: Any
    kind: str  # "ensemble" or "baseline"
    partition: str
    features: dict = field(default_factory=dict)  # build_features keyword arguments
    columns: list[str] = field(default_factory=list)  # feature-frame columns the estimator reads
    intervals: Any = None  # a fitted ConformalIntervals (P10/P50/P90), or None
    trained_through: str = ""  # the last week (ISO date) of the data the estimator was fitted on
    # the partition's baseline, packed inside its ensemble: the forecast of new series with a
    # short history (models saved before had none and forecast them with the ensemble)
    fallback: Any = None
    series: list[str] | None = None  # the "store/product" series it was trained on (None: unknown)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(
                f"model for partition {self.partition!r} needs feature columns {missing}: "
                "build them with manymodels.features.build_features(**model.features)"
            )
        return np.clip(np.asarray(self.estimator.predict(frame[self.columns]), float), 0, None)

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``prediction`` and, when the model has intervals, its P10/P50/P90 columns."""
        point = self.predict(frame)
        out = pd.DataFrame({"prediction": point})
        if getattr(self, "intervals", None) is not None:  # models saved before had none
            out = pd.concat([out, self.intervals.predict(point)], axis=1)
        return out

    def predict_interval(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(p10, p90)`` per row: the interval the online API answers with.

        Raises:
            AttributeError: the model has no intervals (saved before they existed); the API
                then answers without bounds.
        """
        if getattr(self, "intervals", None) is None:
            raise AttributeError(f"model for partition {self.partition!r} has no intervals")
        bands = self.intervals.predict(self.predict(frame))
        return bands["p10"].to_numpy(float), bands["p90"].to_numpy(float)

    def save(self, path: str) -> str:
        """Write the model to ``path``, and beside it its compact scoring form where it has one
        (:mod:`manymodels.scoring_compact`: batch scoring then unpickles no estimator).

        Written by the standard pickler, which ``joblib.load`` (every reader of
        ``packed.joblib``, older models included) reads as it reads its own files: joblib's
        pickler is pure Python and took 4x the CPU for these models (many small arrays and
        frames, none large enough for joblib's own array format to pay)."""
        from manymodels.scoring_compact import save_compact  # noqa: PLC0415

        with Path(path).open("wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)
        save_compact(self, Path(path).parent)
        return path


class ForecastModel(mlflow.pyfunc.PythonModel):
    """The pyfunc face of a :class:`PackedModel` saved as the artifact ``packed``."""

    def load_context(self, context) -> None:
        self.packed: PackedModel = joblib.load(context.artifacts["packed"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):  # noqa: ARG002
        """The forecasts; with intervals a frame of ``prediction``, ``p10``, ``p50``, ``p90``."""
        if getattr(self.packed, "intervals", None) is None:
            return self.packed.predict(model_input)
        return self.packed.predict_frame(model_input)

"""The request and response bodies of ``POST /v1/forecast`` (they make the OpenAPI at /docs)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ForecastRequest",
    "ForecastResponse",
    "ModelInfo",
    "Row",
    "SeriesForecast",
    "SeriesRequest",
    "WeekForecast",
]

_ID = {"min_length": 1, "max_length": 200}


class Row(BaseModel):
    """One week of a series: history (``units`` known) or a future week (covariates only).

    Covariates are further numeric fields named as in ``pipelines/data.yaml`` (e.g. ``events``,
    ``tmax_f``); one left out is taken from the snapshot's row for the same week, when it has one.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"week": "2018-02-19", "units": 3, "events": 1}]},
    )

    week: dt.date = Field(description="the first day of the week")
    units: float | None = Field(None, ge=0, description="units sold; leave out for future weeks")

    @model_validator(mode="after")
    def _numeric_covariates(self) -> Row:
        for name, value in (self.model_extra or {}).items():
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"covariate {name!r} must be a number or null, got {value!r}")
        return self


class SeriesRequest(BaseModel):
    """A series to forecast. Only the keys are needed for a series in the feature snapshot."""

    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(**_ID)
    product_id: str = Field(**_ID)
    partition: str | None = Field(
        None, **_ID, description="partition id; needed for a series the snapshot does not have"
    )
    history: list[Row] = Field(
        default_factory=list, max_length=1040, description="recent weeks (override the snapshot)"
    )
    future: list[Row] = Field(
        default_factory=list, max_length=52, description="covariates of the weeks to forecast"
    )


class ForecastRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"series": [{"store_id": "1", "product_id": "3"}], "weeks": 4}]
        },
    )

    series: list[SeriesRequest] = Field(min_length=1)
    weeks: int = Field(4, ge=1, le=52, description="weeks wanted, at most the model's horizon")
    alias: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="default: serving.alias (champion)"
    )


class WeekForecast(BaseModel):
    week: dt.date
    prediction: float
    lower: float | None = Field(None, description="lower interval bound, when the model has one")
    upper: float | None = Field(None, description="upper interval bound, when the model has one")


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    stale: bool = Field(
        False, description="the registry could not be asked lately; this is the cached version"
    )
    kind: str | None = Field(
        None,
        description="what answered, as batch scoring's model_kind: ensemble, baseline, or "
        "'baseline (new series)' (the baseline packed in the ensemble, for a series younger "
        "than data.min_history_weeks)",
    )
    fallback: bool = Field(False, description="the new-series baseline fallback answered")


class SeriesForecast(BaseModel):
    store_id: str
    product_id: str
    partition: str
    source: Literal["snapshot", "request"]
    model: ModelInfo
    class_change: str | None = Field(
        None,
        description="the product's speed class changed since training: which partition's "
        "model answered (the one it was trained in, as batch scoring)",
    )
    forecasts: list[WeekForecast]


class ForecastResponse(BaseModel):
    forecasts: list[SeriesForecast]
    snapshot_written_at: str | None = None

"""Read the raw sources that ``sources:`` in ``pipelines/data.yaml`` declares.

Each source is a file (a local path or an fsspec URL: ``file://``, ``s3://``, ``abfs://``,
``az://``, ``gs://``; the cloud protocols need the ``manymodels[s3|azure|gcs]`` extras) in one of
the formats in :data:`FORMATS`. A source's ``columns`` map the standard names to its own column
names; :func:`read_sources` returns each source's rows with the standard names, still as read
(parsing dates and quantities is :mod:`.condition`'s job). Errors name the source, its location
and the column, and say what to change.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd
import yaml

from manymodels.config import SourceSettings

__all__ = [
    "FORMATS",
    "KINDS",
    "LoadedSource",
    "SourceError",
    "covariate_modes",
    "display_uri",
    "read_sources",
    "resolve_uri",
]

FORMATS = ("csv", "parquet", "jsonl", "json", "yaml", "excel")
_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_EXTENSIONS |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_EXTENSIONS |= {".yaml": "yaml", ".yml": "yaml", ".xlsx": "excel", ".xls": "excel"}
# the standard names each kind of source must map (besides its covariates)
REQUIRED = {
    "sales": ("store_id", "product_id", "date", "quantity"),
    "returns": ("store_id", "product_id", "date", "quantity"),
    "stores": ("store_id",),
    "products": ("product_id",),
    "events": ("date",),
    "covariates": (),
}
OPTIONAL = {
    "sales": (),
    "returns": (),
    "stores": ("region", "store_format", "zip_code"),
    "products": ("category",),
    "events": ("scope",),
    "covariates": ("store_id", "product_id", "region", "zip_code", "date"),
}
KINDS = tuple(REQUIRED)
_EXTRAS = {"s3": "s3", "s3a": "s3", "abfs": "azure", "abfss": "azure", "az": "azure", "gs": "gcs"}
_EXTRAS |= {"gcs": "gcs"}


class SourceError(ValueError):
    """A source is misdeclared, unreachable or unreadable; the message names it."""


@dataclass(frozen=True)
class LoadedSource:
    """One source's rows with standard column names, and where they came from."""

    settings: SourceSettings
    uri: str
    frame: pd.DataFrame
    sha256: str
    format: str = "csv"

    def row(self, index) -> int:
        """The 1-based row of the file a frame index comes from (a CSV's line 1 is its header)."""
        return int(index) + (2 if self.format == "csv" else 1)

    @property
    def label(self) -> str:
        """How errors name the source: ``source 'sales' (shipments.csv)``."""
        return f"source {self.settings.name!r} ({display_uri(self.uri)})"


def resolve_uri(path: str, root: str) -> str:
    """``path`` if it is absolute or a URL, else ``path`` below ``root`` (a folder or a URL)."""
    if "://" in path or path.startswith("/") or not root:
        return path
    return f"{root.rstrip('/')}/{path}"


def display_uri(uri: str) -> str:
    """``uri`` without credentials (``user:secret@``) or a query string (SAS tokens)."""
    uri = re.sub(r"(://)[^/@]*@", r"\1", uri)
    return uri.split("?", 1)[0]


def covariate_modes(sources: tuple[SourceSettings, ...]) -> dict[str, str]:
    """``{covariate: mode}`` for every covariate the sources give, where the mode says what the
    features may use at forecast time: ``known`` (known in advance, or static), ``lag`` or
    ``climatology`` (see :func:`manymodels.features.build_features`)."""
    modes = {}
    for src in sources:
        if src.kind == "events":
            modes[src.name] = "known"
        for cov in src.covariates:
            dated = src.kind == "covariates" and "date" in src.columns
            known = cov.known_in_advance or not dated
            modes[cov.name] = "known" if known else cov.unknown_as
    return modes


def read_sources(sources: tuple[SourceSettings, ...], root: str) -> dict[str, LoadedSource]:
    """Read every declared source below ``root``.

    Raises:
        SourceError: the declaration is wrong (no sales source, an unknown kind or format, a
            mapping naming a column the file lacks), or a file is missing or unreadable.
    """
    _check_declarations(sources)
    return {src.name: _read(src, root) for src in sources}


def _check_declarations(sources: tuple[SourceSettings, ...]) -> None:  # noqa: PLR0912
    names = [s.name for s in sources]
    if not sources:
        raise SourceError("no sources declared: add a `sources:` list to pipelines/data.yaml")
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise SourceError(f"sources {dupes} are declared twice: give each source its own name")
    for src in sources:
        where = f"source {src.name!r}"
        if not src.name or not src.path:
            raise SourceError(f"{where}: every source needs a name and a path")
        if src.kind not in KINDS:
            raise SourceError(f"{where}: unknown kind {src.kind!r}; use one of {', '.join(KINDS)}")
        if src.format and src.format not in FORMATS:
            raise SourceError(f"{where}: unknown format {src.format!r}; use {', '.join(FORMATS)}")
        allowed = {*REQUIRED[src.kind], *OPTIONAL[src.kind]}
        if unknown := sorted(set(src.columns) - allowed):
            raise SourceError(
                f"{where}: columns {unknown} are not standard names for a {src.kind} source; "
                f"use {sorted(allowed)} (numeric extras go under covariates:)"
            )
        if missing := [c for c in REQUIRED[src.kind] if c not in src.columns]:
            raise SourceError(f"{where}: map the standard column(s) {missing} under columns:")
        if src.frequency not in ("weekly", "daily"):
            raise SourceError(f"{where}: frequency must be weekly or daily, not {src.frequency!r}")
        if src.duplicates not in ("error", "sum"):
            raise SourceError(f"{where}: duplicates must be error or sum, not {src.duplicates!r}")
        if src.negative_quantities not in ("error", "net"):
            raise SourceError(
                f"{where}: negative_quantities must be error or net, "
                f"not {src.negative_quantities!r}"
            )
        if src.negative_quantities != "error" and src.kind != "sales":
            raise SourceError(
                f"{where}: negative_quantities: {src.negative_quantities} is for the sales source "
                "(where returns are booked as negative sales); a returns source gives the "
                "returned quantities as positive numbers"
            )
        if src.week_date not in ("start", "end"):
            raise SourceError(f"{where}: week_date must be start or end, not {src.week_date!r}")
        for cov in src.covariates:
            if not cov.name:
                raise SourceError(f"{where}: every covariate needs a name")
            if cov.unknown_as not in ("lag", "climatology"):
                raise SourceError(
                    f"{where}: covariate {cov.name!r}: unknown_as must be lag or climatology"
                )
            if cov.agg not in ("mean", "sum", "max", "min", "last"):
                raise SourceError(
                    f"{where}: covariate {cov.name!r}: agg must be mean, sum, max, min or last"
                )
    sales = [s.name for s in sources if s.kind == "sales"]
    if len(sales) != 1:
        raise SourceError(f"declare exactly one source of kind 'sales' (found {sales or 'none'})")
    covariates = [c.name for s in sources for c in s.covariates]
    covariates += [s.name for s in sources if s.kind == "events"]
    if dupes := sorted({n for n in covariates if covariates.count(n) > 1}):
        raise SourceError(f"covariate(s) {dupes} are given by two sources: rename one")


def _format(src: SourceSettings, uri: str) -> str:
    if src.format:
        return src.format
    suffix = PurePosixPath(display_uri(uri)).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise SourceError(
            f"source {src.name!r} ({display_uri(uri)}): cannot tell the format from {suffix!r}: "
            f"set format: to one of {', '.join(FORMATS)}"
        )
    return _EXTENSIONS[suffix]


def _fetch(src: SourceSettings, uri: str) -> bytes:
    import fsspec  # noqa: PLC0415 (only condition needs it)

    shown = display_uri(uri)
    protocol = uri.split("://", 1)[0] if "://" in uri else "file"
    try:
        with fsspec.open(uri, "rb", **src.options) as handle:
            return handle.read()
    except ImportError as exc:
        extra = _EXTRAS.get(protocol, protocol)
        raise SourceError(
            f"source {src.name!r} ({shown}): reading {protocol}:// needs an extra package: "
            f"pip install 'manymodels[{extra}]' ({exc})"
        ) from exc
    except ValueError as exc:
        if "protocol" in str(exc).lower():
            raise SourceError(f"source {src.name!r} ({shown}): unknown protocol: {exc}") from exc
        raise SourceError(f"source {src.name!r} ({shown}): could not be read: {exc}") from exc
    except FileNotFoundError as exc:
        raise SourceError(
            f"source {src.name!r}: {shown} does not exist: check data.uri / MANYMODELS_DATA_URI "
            f"and the source's path ({src.path!r})"
        ) from exc
    except OSError as exc:  # network, permissions: never read as "no data"
        raise SourceError(f"source {src.name!r}: {shown} is unreachable: {exc}") from exc


def _parse(src: SourceSettings, data: bytes, fmt: str, shown: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        if fmt == "parquet":
            return pd.read_parquet(io.BytesIO(data))
        if fmt == "jsonl":
            return pd.read_json(io.BytesIO(data), lines=True, dtype=False)
        if fmt == "excel":
            return pd.read_excel(io.BytesIO(data), sheet_name=src.sheet or 0, dtype=str)
        loaded = json.loads(data) if fmt == "json" else yaml.safe_load(data)
    except ImportError as exc:
        raise SourceError(f"source {src.name!r} ({shown}): {fmt} needs a package: {exc}") from exc
    except (ValueError, yaml.YAMLError, OSError, zipfile.BadZipFile) as exc:
        raise SourceError(f"source {src.name!r} ({shown}): not valid {fmt}: {exc}") from exc
    if src.records:
        loaded = loaded.get(src.records) if isinstance(loaded, dict) else None
        if loaded is None:
            loaded = []
    if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
        where = f"under {src.records!r}" if src.records else "at the top level (or set records:)"
        raise SourceError(f"source {src.name!r} ({shown}): expected a list of rows {where}")
    return pd.DataFrame(loaded)


def _read(src: SourceSettings, root: str) -> LoadedSource:
    uri = resolve_uri(src.path, root)
    fmt = _format(src, uri)
    data = _fetch(src, uri)
    shown = display_uri(uri)
    raw = _parse(src, data, fmt, shown)
    if raw.empty and not len(raw.columns):  # no rows at all (e.g. ``events: []``): fine
        raw = pd.DataFrame(
            columns=[*map(str, src.columns.values()), *(c.column or c.name for c in src.covariates)]
        )  # noqa: E501
    wanted = {std: str(col) for std, col in src.columns.items()}
    wanted |= {f"cov:{c.name}": c.column or c.name for c in src.covariates}
    if missing := sorted({c for c in wanted.values() if c not in raw.columns}):
        named = [k.removeprefix("cov:") for k, v in wanted.items() if v in missing]
        raise SourceError(
            f"source {src.name!r} ({shown}): column(s) {missing} (mapped to {named}) are not in "
            f"the file; its columns are {list(raw.columns)}"
        )
    frame = pd.DataFrame({std.removeprefix("cov:"): raw[col] for std, col in wanted.items()})
    return LoadedSource(src, uri, frame, hashlib.sha256(data).hexdigest()[:16], fmt)

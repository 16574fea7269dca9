"""Atomic file output: every step writes to a temporary path and renames it into place.

A step that fails or is interrupted half-way therefore never leaves a truncated file that a later
step would read: readers see either the previous complete output or the new complete output.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "atomic_dir",
    "atomic_path",
    "finite",
    "json_text",
    "read_json",
    "write_json",
    "write_parquet",
    "write_text",
]


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside ``target``; rename it to ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes files private; keep the usual mode
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; swap it in for ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write ``frame`` to ``target`` as parquet, atomically."""
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    return Path(target)


def write_json(data: Any, target: str | Path) -> Path:
    """Write ``data`` as indented JSON, atomically (dates and paths become strings)."""
    return write_text(json_text(data), target)


def json_text(data: Any) -> str:
    """The text :func:`write_json` writes for ``data`` (to write it to several files).

    Strict JSON: a NaN or an infinity (a metric with nothing to measure, such as RMSE on
    zero weeks where no week sold nothing) is written as ``null``, which every JSON parser
    reads; Python's default ``NaN`` token is rejected by ``jq``, JavaScript and most others.
    Readers take ``null`` back as "undefined" (:func:`manymodels.gate.judge` as NaN).
    """
    return json.dumps(finite(data), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def finite(data: Any) -> Any:
    """``data`` with every NaN or infinite float (NumPy's too) replaced by ``None``."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def write_text(text: str, target: str | Path) -> Path:
    """Write ``text`` to ``target``, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def read_json(path: str | Path, step: str | None = None) -> Any:
    """Read a JSON file, with an error that names the file and the step that writes it.

    Args:
        path: the JSON file.
        step: the step that writes it, named in the error when the file is missing.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if not path.exists():
        run = f"`manymodels {step}`" if step else "the step that writes it"
        raise FileNotFoundError(f"{path} does not exist: run {run} first")
    return json.loads(path.read_text())

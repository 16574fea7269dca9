# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore the conditioned table
# The standard long table the pipelines train on, made by the package's own steps from the raw
# sources. Copy this file to `notebooks/<you>/` to explore; what proves useful moves into
# `code/manymodels/` with a test. Set `NOTEBOOK_RAW` to another raw folder to look at your data.

# %%
import json
import os
from pathlib import Path

import pandas as pd

from manymodels.cli import main as manymodels

RAW = Path(os.environ.get("NOTEBOOK_RAW", "work/raw"))
WORKDIR = Path(os.environ.get("NOTEBOOK_WORKDIR", "work/notebooks"))
CONFIG = os.environ.get("NOTEBOOK_CONFIG", "pipelines")
common = ["--config-dir", CONFIG, "--set", f"project.workdir={WORKDIR}"]

# %% [markdown]
# ## Condition and partition with the pipeline's steps

# %%
assert manymodels(["condition", *common, "--raw", str(RAW)]) == 0
assert manymodels(["partition", *common]) == 0
table = pd.read_parquet(WORKDIR / "conditioned" / "demand.parquet")
manifest = json.loads((WORKDIR / "conditioned" / "manifest.json").read_text())
index = json.loads((WORKDIR / "partitions" / "index.json").read_text())
table.head()

# %% [markdown]
# ## Shape: weeks, series, partitions

# %%
known = table[table["units"].notna()]
summary = pd.Series(
    {
        "rows": len(table),
        "weeks": table["week"].nunique(),
        "stores": table["store_id"].nunique(),
        "products": table["product_id"].nunique(),
        "partitions": len(index["partitions"]),
        "future rows (units unknown)": int(table["units"].isna().sum()),
    }
)
summary

# %% [markdown]
# ## Slow and fast movers: share of zero weeks and mean units

# %%
by_speed = known.groupby("speed", observed=True)["units"].agg(
    zero_share=lambda u: float((u == 0).mean()), mean_units="mean", rows="size"
)
by_speed

# %% [markdown]
# ## Total units per week and partition

# %%
keys = list(next(iter(index["partitions"].values()))["keys"])
weekly = known.groupby(["week", *keys], observed=True)["units"].sum().unstack(keys)
ax = weekly.plot(figsize=(10, 4), legend=False, title="units per week and partition")
ax.figure.savefig(WORKDIR / "weekly_units.png")
assert len(weekly) == known["week"].nunique() and manifest["rows"] == len(table)

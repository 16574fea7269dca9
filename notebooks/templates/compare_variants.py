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
# # Compare model variants, tracked in MLflow
# Two settings variants trained on one partition with the package's training function, each
# logged as an MLflow run, then compared with `mlflow.search_runs`. The store is a local sqlite
# file under `NOTEBOOK_WORKDIR`; point `MLFLOW_TRACKING_URI` elsewhere to share runs.

# %%
import math
import os
from pathlib import Path

import mlflow
import pandas as pd

from manymodels.cli import main as manymodels
from manymodels.config import load_settings
from manymodels.training import train_partition

RAW = Path(os.environ.get("NOTEBOOK_RAW", "work/raw"))
WORKDIR = Path(os.environ.get("NOTEBOOK_WORKDIR", "work/notebooks")).resolve()
CONFIG = os.environ.get("NOTEBOOK_CONFIG", "pipelines")
EPOCHS = int(os.environ.get("NOTEBOOK_EPOCHS", "5"))
common = ["--config-dir", CONFIG, "--set", f"project.workdir={WORKDIR}"]
settings = load_settings(CONFIG, "dev", [f"project.workdir={WORKDIR}"])

# %%
assert manymodels(["condition", *common, "--raw", str(RAW)]) == 0
assert manymodels(["partition", *common]) == 0
files = sorted((WORKDIR / "partitions").glob("*.parquet"))
partition = files[0].name.removesuffix(".parquet")
frame = pd.read_parquet(files[0])
partition, len(frame)

# %% [markdown]
# ## The variants: settings overrides, as `--set` would give them

# %%
variants = {
    "default": {"training.nn.epochs": EPOCHS},
    "strong-lasso": {"training.nn.epochs": EPOCHS, "training.lasso.alpha": 0.03},
}
mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{WORKDIR}/mlflow.db")
experiment = mlflow.set_experiment("notebook-variants")
for name, overrides in variants.items():
    fit = train_partition(frame, partition, settings.replace(overrides))
    with mlflow.start_run(run_name=name, tags={"partition": partition, "variant": name}):
        mlflow.log_params(overrides)
        mlflow.log_metrics({k: v for k, v in fit.metrics.items() if not math.isnan(v)})

# %% [markdown]
# ## Compare: test-window metrics per variant

# %%
runs = mlflow.search_runs(
    [experiment.experiment_id], filter_string=f"tags.partition = '{partition}'"
)
columns = [
    "tags.variant",
    "metrics.ensemble_mape",
    "metrics.baseline_mape",
    "metrics.ensemble_wape",
]
comparison = runs[columns].set_index("tags.variant").sort_values("metrics.ensemble_mape")
assert set(comparison.index) >= set(variants)
comparison

"""CPU seconds per partition of three member sets, interleaved partition by partition.

``main_lasso_nn``: LASSO + network (main before issue 14's members); ``previous_lasso_nn_gbm150``:
LASSO + network + 150 trees on fast movers, + TSB on slow ones; ``now``: pipelines/training.yaml.
Each runs the whole backtest (2 origins + the refit) in this one process, so the three see the
same load. Usage (after ``peers.py project`` cached the mock panel):

    .venv/bin/python benchmarks/member_cost.py 8     # the first 8 partitions

:func:`interleaved` is the measurement; ``benchmarks/defaults_cost.py`` runs it on other sets.
"""

import json
import resource
import sys

sys.path.insert(0, "code")  # noqa: E402
import pandas as pd
import torch

torch.set_num_threads(1)
from manymodels.config import load_settings  # noqa: E402
from manymodels.training import train_partition  # noqa: E402

CONFIGS = {
    "main_lasso_nn": ["training.ensemble.members=[lasso,nn]", "training.ensemble.overrides=[]"],
    "previous_lasso_nn_gbm150": [
        "training.ensemble.members=[lasso,nn,gbm]",
        "training.ensemble.overrides=[{key: speed, value: slow, members: [lasso,nn,intermittent]}]",
        "training.gbm.max_iter=150",
        "training.gbm.learning_rate=0.08",
    ],
    "now": [],
}


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def interleaved(panel: str, n: int, configs: dict, baselines: tuple[str, ...]) -> dict:
    """Train the first ``n`` partitions of the ``panel`` parquet with each of ``configs``
    (``--set`` items on pipelines/), partition by partition; the CPU seconds per partition of
    each, and their ratios to each of ``baselines``."""
    table = pd.read_parquet(panel)
    parts = sorted(table.partition.unique())[:n]
    settings = {
        k: load_settings("pipelines", "dev", [*v, "training.plots=false"])
        for k, v in configs.items()
    }
    cpu = dict.fromkeys(configs, 0.0)
    for pid in parts:
        frame = table[table.partition == pid].drop(columns="partition")
        for k, s in settings.items():
            t = _cpu()
            train_partition(frame, pid, s)
            cpu[k] += _cpu() - t
        print(pid, {k: round(v, 1) for k, v in cpu.items()}, flush=True)  # noqa: T201
    res = {k: v / len(parts) for k, v in cpu.items()}
    ratios = {b: {k: v / res[b] for k, v in res.items()} for b in baselines}
    return {"partitions": parts, "cpu_seconds_per_partition": res, "ratio_vs": ratios}


if __name__ == "__main__":
    result = interleaved(
        "work/bench-peers/panel.parquet", int(sys.argv[1]), CONFIGS, ("main_lasso_nn",)
    )
    print(json.dumps(result, indent=2))  # noqa: T201

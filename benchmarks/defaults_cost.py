"""CPU seconds per partition of main's LASSO + network, the previous defaults and the current
ones (pipelines/training.yaml), interleaved partition by partition in one process (as
``benchmarks/member_cost.py``), so the three see the same load. Each runs the whole backtest
(2 origins + the refit). ``main_lasso_nn`` runs first and carries the process's warm-up.

    .venv/bin/python benchmarks/defaults_cost.py 8 work/bench-peers/panel.parquet
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

SLOW = (
    "training.ensemble.overrides=[{key: speed, value: slow, where: {store_format: large},"
    " members: [fourier, intermittent], weighting: nnls},"
    " {key: speed, value: slow, members: [fourier, nn, intermittent], weighting: wape}]"
)
CONFIGS = {
    "main_lasso_nn": ["training.ensemble.members=[lasso,nn]", "training.ensemble.overrides=[]"],
    "previous_defaults": ["training.ensemble.members=[fourier,nn,gbm,seasonal]", SLOW],
    "now": [],
}


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main() -> None:
    table = pd.read_parquet(sys.argv[2])
    parts = sorted(table.partition.unique())[: int(sys.argv[1])]
    settings = {
        k: load_settings("pipelines", "dev", [*v, "training.plots=false"])
        for k, v in CONFIGS.items()
    }
    cpu = dict.fromkeys(CONFIGS, 0.0)
    for pid in parts:
        frame = table[table.partition == pid].drop(columns="partition")
        for k, s in settings.items():
            t = _cpu()
            train_partition(frame, pid, s)
            cpu[k] += _cpu() - t
        print(pid, {k: round(v, 1) for k, v in cpu.items()}, flush=True)  # noqa: T201
    res = {k: v / len(parts) for k, v in cpu.items()}
    ratios = {
        b: {k: v / res[b] for k, v in res.items()} for b in ("main_lasso_nn", "previous_defaults")
    }
    print(
        json.dumps(
            {"partitions": parts, "cpu_seconds_per_partition": res, "ratio_vs": ratios}, indent=2
        )
    )  # noqa: T201


if __name__ == "__main__":
    main()

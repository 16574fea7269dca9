"""CPU seconds per partition of main's LASSO + network, the previous defaults and the current
ones (pipelines/training.yaml), interleaved partition by partition in one process (as
``benchmarks/member_cost.py``), so the three see the same load. Each runs the whole backtest
(2 origins + the refit). ``main_lasso_nn`` runs first and carries the process's warm-up.

    .venv/bin/python benchmarks/defaults_cost.py 8 work/bench-peers/panel.parquet
"""

import json
import sys

from member_cost import interleaved

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


if __name__ == "__main__":
    result = interleaved(
        sys.argv[2], int(sys.argv[1]), CONFIGS, ("main_lasso_nn", "previous_defaults")
    )
    print(json.dumps(result, indent=2))  # noqa: T201

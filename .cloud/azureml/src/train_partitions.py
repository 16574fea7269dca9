"""Azure ML parallel-job entry script (jobs/train-parallel.yml): the logic lives in the
installed package, so this file only hands the runtime's ``init``/``run`` calls to it."""

from manymodels.azureml_parallel import init, run

__all__ = ["init", "run"]

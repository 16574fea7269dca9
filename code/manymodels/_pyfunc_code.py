"""MLflow "models from code" entry point: logging this file (not a pickled object) keeps
cloudpickle out of the saved model; the model's state lives in its ``packed`` artifact."""

import mlflow.models

from manymodels.pyfunc import ForecastModel

mlflow.models.set_model(ForecastModel())

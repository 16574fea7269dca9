# The online API image for .cloud/azureml/online-deployment.yml (and any container platform):
# `manymodels serve` on 0.0.0.0:8080, the loading policy from MANYMODELS_SERVING_* variables.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY requirements/constraints.txt requirements/constraints.txt
COPY code code
COPY pipelines pipelines
# CPU torch from its own index (PyPI's default is the multi-GB CUDA build); azureml-mlflow lets
# MLflow talk to the workspace's azureml:// registry
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \
        -c requirements/constraints.txt ".[serve]" azureml-mlflow
ENV MLFLOW_DISABLE_TELEMETRY=true \
    MANYMODELS_SERVING_HOST=0.0.0.0 \
    MANYMODELS_SERVING_PORT=8080
EXPOSE 8080
USER nobody
CMD ["manymodels", "serve", "--env", "prod", "--set", "project.workdir=/tmp/work"]

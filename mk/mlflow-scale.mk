# MLflow at 10,000 models (docs/benchmarks.md): a real mlflow server on a throwaway PostgreSQL.
# `make postgres` installs Debian's postgresql where it is missing (as root), so the PostgreSQL
# tests (warehouse, MLflow server benchmark) really run in CI instead of skipping.
MODELS_STAGES ?= 40 120 1000 10000
.PHONY: postgres bench-mlflow

postgres: ## install Debian's postgresql for the PostgreSQL-backed tests when it is missing (as root)
	@if command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) \
		|| echo "postgresql could not be installed: the PostgreSQL tests will skip"; \
	else \
		echo "no postgresql and not root: the PostgreSQL tests will skip (apt-get install postgresql)"; \
	fi

bench-mlflow: $(DEV_STAMP) postgres ## MLflow server on PostgreSQL and sqlite at MODELS_STAGES registered models
	$(BIN)/python benchmarks/mlflow_scale.py --stages $(MODELS_STAGES) --out benchmarks/results/mlflow_scale.json

test test-cov: postgres

# manymodels: every CI step is one of these targets, so anything a workflow does runs locally
# with the same command. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ENV ?= dev
ARGS ?=
# Extra pip options, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" on a
# runner whose PyPI would otherwise hand out the multi-GB CUDA build of torch.
PIP_ARGS ?=
export MLFLOW_DISABLE_TELEMETRY := true
export PYTHONDONTWRITEBYTECODE := 1

MM := $(BIN)/manymodels
STAMP := $(VENV)/.installed

.PHONY: help setup demo test test-unit test-slow lint format clean mlflow-ui sample bench \
	mock condition validate partition training

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_ARGS) -c requirements/constraints.txt -e ".[dev]"
	touch $@

setup: $(STAMP) ## create .venv and install the project with its dev tools

demo: $(STAMP) ## THE MAIN JOB: fresh mock data through every pipeline, embedded local defaults
	$(MM) demo --env $(ENV) $(ARGS)

test: lint ## lint, then the whole test suite (slow end-to-end tests included) with the coverage gate
	$(BIN)/pytest --cov --cov-report=term --cov-report=xml $(ARGS)

test-unit: $(STAMP) ## the fast tests only (no coverage gate)
	$(BIN)/pytest -m "not slow" $(ARGS)

test-slow: $(STAMP) ## the slow end-to-end tests only
	$(BIN)/pytest -m slow $(ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

mock: $(STAMP) ## write mock raw sources to work/raw
	$(MM) mock --env $(ENV) $(ARGS)

condition validate partition: $(STAMP)
	$(MM) $@ --env $(ENV) $(ARGS)

training: $(STAMP) ## run the training pipeline (pipelines/training.yaml) in ENV
	$(MM) run training --env $(ENV) $(ARGS)

mlflow-ui: $(STAMP) ## browse runs and registered models of ENV at http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///work/mlflow/$(ENV)/mlflow.db \
		--registry-store-uri sqlite:///work/mlflow/$(ENV)/mlflow.db --host 127.0.0.1 --port 5000

sample: $(STAMP) ## regenerate the tiny committed sample under tests/data/raw
	$(MM) mock --out tests/data/raw --regions 2 --stores-per-region 2 --products 6 \
		--start 2017-01-02 --weeks 60 --seed 7

clean: ## remove generated data, stores and caches (keeps .venv)
	rm -rf work .pytest_cache .ruff_cache .coverage .coverage.* coverage.xml htmlcov dist build

-include mk/*.mk

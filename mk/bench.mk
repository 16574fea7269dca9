# Benchmarks that need their own environment (see docs/benchmarks.md).
PEERS_VENV ?= .venv-peers
PEERS_OUT ?= $(WORKDIR)/bench-peers
PANEL ?= mock
SAMPLE ?= 0
KEYS ?= region,store_format,speed
CONFIG ?= pipelines
SKIP ?=
NAME ?= $(notdir $(basename $(PANEL)))

.PHONY: bench-peers bench-peers-walmart

$(PEERS_VENV)/.installed: requirements/peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install $(PIP_ARGS) -q -r requirements/peers.txt
	touch $@

bench-peers: $(STAMP) $(PEERS_VENV)/.installed ## the ensemble vs statsforecast/mlforecast peers (PANEL=mock|file.parquet, KEYS=..., SAMPLE=N, CONFIG=pipelines dir, SKIP=auto_ets)
	$(BIN)/python benchmarks/peers.py project --panel $(PANEL) --keys $(KEYS) --sample $(SAMPLE) --config-dir $(CONFIG) --out $(PEERS_OUT)
	$(PEERS_VENV)/bin/python benchmarks/peers.py peers --panel $(PANEL) --keys $(KEYS) --sample $(SAMPLE) --skip "$(SKIP)" --out $(PEERS_OUT)
	$(BIN)/python benchmarks/peers.py report --panel $(NAME) --out $(PEERS_OUT)
	mkdir -p benchmarks/results && cp $(PEERS_OUT)/peers.json benchmarks/results/peers_$(NAME).json

# the real Walmart panel (examples/walmart): conditioned with its own data.yaml, then the peers
bench-peers-walmart: $(STAMP) ## the peer benchmark on the Walmart example panel
	rm -rf $(WORKDIR)/walmart/pipelines && mkdir -p $(WORKDIR)/walmart && cp -r pipelines $(WORKDIR)/walmart/pipelines
	cp examples/walmart/data.yaml $(WORKDIR)/walmart/pipelines/data.yaml
	$(BIN)/python examples/walmart/fetch_data.py $(WORKDIR)/walmart/raw
	MANYMODELS_DATA_URI=$(abspath $(WORKDIR))/walmart/raw $(MM) condition --local --config-dir $(WORKDIR)/walmart/pipelines \
		--set project.workdir=$(abspath $(WORKDIR))/walmart/work
	$(MAKE) --no-print-directory bench-peers PANEL=$(WORKDIR)/walmart/work/conditioned/demand.parquet NAME=walmart \
		CONFIG=$(WORKDIR)/walmart/pipelines PEERS_OUT=$(WORKDIR)/bench-peers-walmart

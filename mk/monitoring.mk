# Monitoring (docs/monitoring.md): `make monitor` is what the scheduled monitoring workflow runs;
# `make browser` makes sure the dashboard test has a real Chromium (make test depends on it).
.PHONY: monitor browser

monitor: $(STAMP) ## monitoring in prod -> work/monitoring/ (embedded mode: the demo's whole loop first)
	if [ -z "$${MLFLOW_TRACKING_URI:-}" ] && [ ! -d $(WORKDIR)/mlflow/prod ]; then \
		echo "embedded mode: no registry configured: running the demo loop on mock data"; \
		$(MM) demo --set project.workdir=$(WORKDIR) $(ARGS); \
	else \
		$(MM) run monitoring --env prod --set project.workdir=$(WORKDIR) $(ARGS); \
	fi

browser: ## install Debian's chromium for the dashboard test when it is missing (as root)
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| command -v google-chrome >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the dashboard browser test will skip"; \
	else \
		echo "no chromium and not root: the dashboard browser test will skip (apt-get install chromium)"; \
	fi

test test-cov: browser

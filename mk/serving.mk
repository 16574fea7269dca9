# Online serving (docs/serving.md). Included by the Makefile (mk/*.mk).
.PHONY: serve serve-smoke

serve: $(STAMP) ## the online forecast API on http://127.0.0.1:8080 (docs at /docs); Ctrl-C stops it
	$(MM) serve --env $(ENV) --set project.workdir=$(WORKDIR) $(ARGS)

serve-smoke: $(STAMP) ## start the online API on batch scoring's snapshot, smoke-test it, stop it
	$(BIN)/python -m manymodels.serve.smoke --env $(ENV) --set project.workdir=$(WORKDIR)

# Azure ML (.cloud/README.md): the environment image's build context, and the fork checks.
CLOUD_IMAGE_SRC := .cloud/azureml/image
CLOUD_CONTEXT ?= $(CLOUD_IMAGE_SRC)
WHEELS ?= dist

.PHONY: cloud-image doctor

cloud-image: $(STAMP) ## Azure ML environment build context: Dockerfile + the wheel from $(WHEELS)/ + the pins
	test -n "$$(ls $(WHEELS)/manymodels-*.whl 2>/dev/null)" || $(MAKE) --no-print-directory package
	mkdir -p $(CLOUD_CONTEXT)/wheels
	rm -f $(CLOUD_CONTEXT)/wheels/*.whl
	cp $(WHEELS)/manymodels-*.whl $(CLOUD_CONTEXT)/wheels/
	cp requirements/constraints.txt $(CLOUD_CONTEXT)/constraints.txt
	test "$(CLOUD_CONTEXT)" = "$(CLOUD_IMAGE_SRC)" || cp $(CLOUD_IMAGE_SRC)/Dockerfile $(CLOUD_CONTEXT)/
	@ls -l $(CLOUD_CONTEXT) $(CLOUD_CONTEXT)/wheels

doctor: $(STAMP) ## what a fork still has to set up: GitHub variables, environments, OIDC credentials
	$(MM) doctor $(ARGS)

# Workflows, chart and runner image (issue 8); included by the Makefile.
HELM_VERSION ?= v3.22.0
HELM = $(shell bash scripts/build/go-tool.sh helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION) 2>/dev/null)
CHART := charts/fleet-eval

.PHONY: render render-check helm chart-lint test-workflows runner-requirements runner-context wheelhouse

render: $(SETUP_STAMP) ## Render the WorkflowTemplates (and gate policies) into charts/fleet-eval/files/, and values.schema.json
	$(PY) -m workflows.render
	$(PY) -m workflows.chart_render

render-check: ## Fail when a generated chart file (files/, values.schema.json, _contracts.tpl) is stale (what CI runs)
	$(PY) -m workflows.render --check
	$(PY) -m workflows.chart_render --check

helm: ## Build helm $(HELM_VERSION) from the Go module proxy into the machine cache (once)
	@bash scripts/build/go-tool.sh helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION)

chart-lint: render-check ## helm lint --strict the chart with every ci/*-values.yaml scenario
	@for values in $(CHART)/ci/*-values.yaml; do \
	  echo "helm lint $$values"; $(HELM) lint --strict $(CHART) -f $$values --kube-version 1.34.4 || exit 1; \
	done

test-workflows: ## Rendering, conventions, argo lint, chart and version-resolution tests
	$(PYTEST) tests/workflows tests/chart tests/unit/versions

runner-requirements: ## Export uv.lock into images/runner/requirements/*.txt (the runner images' pins, with hashes)
	$(PY) scripts/build/runner_context.py requirements

runner-context: ## Assemble the runner build context in $(FLEET_EVAL_CACHE)/work/runner-context (prints its digest)
	$(PY) scripts/build/runner_context.py context --out $(FLEET_EVAL_CACHE)/work/runner-context

wheelhouse: ## Download every wheel the runner images install into $(FLEET_EVAL_CACHE)/wheelhouse (for a package index)
	bash scripts/build/wheelhouse.sh

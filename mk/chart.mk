# Workflows, chart and runner image (issue 8); included by the Makefile.
HELM_VERSION ?= v3.22.0
HELM = $(shell bash scripts/build/go-tool.sh helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION) 2>/dev/null)
CHART := charts/fleet-eval
RUNNER_VERSION = $(shell $(PY) -c 'import eval_runner; print(eval_runner.__version__)')
# Object key (in the artifact bucket) the evaluate workflow reads the build context from; see workflows/versions.py.
RUNNER_CONTEXT_KEY = build/runner-context/fleet-eval-$(RUNNER_VERSION).tar.gz
RUNNER_CONTEXT = $(FLEET_EVAL_CACHE)/work/$(RUNNER_CONTEXT_KEY)

.PHONY: render render-check helm chart-lint test-workflows runner-context runner-image wheelhouse

render: ## Render the Hera WorkflowTemplates (and gate policies) into charts/fleet-eval/files/
	$(PY) -m workflows.render

render-check: ## Fail when charts/fleet-eval/files/ is stale (what CI runs)
	$(PY) -m workflows.render --check

helm: ## Build helm $(HELM_VERSION) from the Go module proxy into the machine cache (once)
	@bash scripts/build/go-tool.sh helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION)

chart-lint: render-check ## helm lint --strict the chart with every ci/*-values.yaml scenario
	@for values in $(CHART)/ci/*-values.yaml; do \
	  echo "helm lint $$values"; $(HELM) lint --strict $(CHART) -f $$values --kube-version 1.34.4 || exit 1; \
	done

test-workflows: ## Rendering, conventions, argo lint, chart and version-resolution tests
	$(PYTEST) tests/workflows tests/chart tests/unit/versions

runner-context: ## Pack the runner image build context the evaluate workflow's BuildKit step unpacks
	@mkdir -p $(dir $(RUNNER_CONTEXT))
	git archive --format=tar.gz -o $(RUNNER_CONTEXT) HEAD pyproject.toml README.md eval_runner images/runner
	@echo "wrote $(RUNNER_CONTEXT); upload it to the artifact bucket under the key $(RUNNER_CONTEXT_KEY)"

runner-image: ## Build a runner image: no VERSION = the core image (with the review UI); VERSION=0.9.0 INDEX=http://host/simple/
	docker build -f images/runner/Dockerfile \
	  --build-arg LIBRARY_REQUIREMENT="$(if $(VERSION),battery-lib==$(VERSION))" \
	  --build-arg LIBRARY_VERSION="$(or $(VERSION),none)" --build-arg PIP_INDEX_URL="$(INDEX)" \
	  --build-arg EXTRAS="$(if $(VERSION),,review)" \
	  --build-arg RUNNER_VERSION=$(RUNNER_VERSION) --build-arg REVISION=$$(git rev-parse HEAD) \
	  -t localhost:5001/fleet-eval/runner:$(or $(VERSION),core)-runner-$(RUNNER_VERSION) .

WHEELHOUSE = $(FLEET_EVAL_CACHE)/work/wheelhouse
wheelhouse: ## Download the wheels runner builds need (eval_runner's deps) for the offline cluster's package index
	@mkdir -p $(WHEELHOUSE)
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
	  print('\n'.join(p['dependencies'] + p['optional-dependencies']['review'] + ['hatchling>=1.25']))" >$(WHEELHOUSE)/requirements.txt
	$(PY) -m pip download --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
	  --platform manylinux_2_28_x86_64 --platform any -d $(WHEELHOUSE) -r $(WHEELHOUSE)/requirements.txt
	@echo "copy $(WHEELHOUSE)/*.whl into the package index volume (or upload them with an uploadSecret)"

# The whole loop on the kind cluster (issue 9); included by the Makefile.
DEMO_ARGS ?=

.PHONY: demo demo-images bench-cluster test-e2e-loop

demo-images: ## Build and push the images the chart needs (runners per library version, fieldsim, pypiserver)
	PY=$(PY) bash scripts/demo/images.sh

demo: cluster demo-images ## The loop on kind: chart + simulated fleet, datasets, review, evaluate, gate, release, rollouts
	$(PY) -m scripts.demo.run $(DEMO_ARGS)

bench-cluster: cluster demo-images ## Fleet mode on 100k devices: cluster vs `fleet run --local` (bench/results/fleet_cluster*)
	$(PY) bench/fleet_cluster.py

test-e2e-loop: demo-images ## e2e loop and chaos tests on the kind cluster (installs the chart small unless installed)
	$(PYTEST) tests/e2e/test_loop.py tests/e2e/test_chaos.py

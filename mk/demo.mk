# The whole loop on the kind cluster (issue 9); included by the Makefile.
DEMO_ARGS ?=

.PHONY: demo demo-images bench-cluster test-e2e test-e2e-loop

demo-images: $(SETUP_STAMP) ## Build and push the chart's non-library images (core runner, fieldsim, package index, Git server)
	PY=$(PY) bash scripts/demo/images.sh

demo: $(SETUP_STAMP) cluster demo-images ## The loop on kind: chart + simulated fleet, datasets, review, evaluate, gate, release, rollouts
	$(PY) -m scripts.demo.run $(DEMO_ARGS)

bench-cluster: $(SETUP_STAMP) cluster demo-images ## Fleet mode on 100k devices: cluster vs `fleet run --local` (bench/results/fleet_cluster*)
	$(PY) bench/fleet_cluster.py

# The e2e tier of `make test`: smoke, the loop at a small scale (600 devices x 2 months unless the demo's
# install exists) and chaos. The chart is installed or upgraded from this checkout by the fixtures.
test-e2e: $(SETUP_STAMP) cluster demo-images ## The cluster tiers: smoke, the whole loop at a small scale, chaos (tests/e2e)
	PYTEST=$(PYTEST) bash scripts/pytest-tier.sh -m e2e --durations=25 tests/e2e

test-e2e-loop: $(SETUP_STAMP) cluster demo-images ## Only the loop and chaos tests on kind
	$(PYTEST) tests/e2e/test_loop.py tests/e2e/test_chaos.py

# Offline kind cluster with Argo Workflows (issue 7); included by the Makefile. Everything is built
# from Debian packages and the Go module proxy and cached under $(FLEET_EVAL_CACHE).
.PHONY: cluster cluster-down cluster-images test-e2e-smoke

cluster: helm ## Build (or load from cache) and start the kind cluster with Argo, S3, registry, BuildKit (and helm)
	bash scripts/build/cluster/up.sh

cluster-down: ## Delete the kind cluster; built images and binaries stay cached
	bash scripts/build/cluster/down.sh

cluster-images: ## Build the binaries, infra images and the kind node image without starting a cluster
	bash scripts/host/setup-docker.sh
	bash scripts/build/kubernetes.sh
	bash scripts/build/components.sh all
	bash scripts/build/base-image.sh >/dev/null
	bash scripts/build/images.sh all
	bash scripts/build/node-image.sh >/dev/null

test-e2e-smoke: cluster ## Bring the cluster up, then run only the e2e smoke test (Argo, S3, in-cluster build)
	PYTEST=$(PYTEST) bash scripts/pytest-tier.sh -m e2e tests/e2e/test_smoke.py

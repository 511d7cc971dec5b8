"""The demo driver: `make demo` runs the loop on the kind cluster (python -m scripts.demo.run)."""

"""Human review of monthly datasets: review manifests (parse, validate, read, save) and the review UI."""

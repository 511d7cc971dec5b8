"""Seeded, deterministic field simulator for fleet-eval."""

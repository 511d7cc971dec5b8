"""Adapters for the field sources: the analytics database and the five API shards."""

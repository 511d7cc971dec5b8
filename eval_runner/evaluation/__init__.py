"""Evaluate library versions on reviewed datasets, compare them, and gate a release on a policy."""

"""Seeded, deterministic field simulator for fleet-eval.

``simulate(SimConfig.for_months(...))`` builds a fleet; ``library_input.month_dataset`` is the oracle of
the extractor's output; ``postgres`` and ``shards`` serve the fleet as the real sources are served.
"""

from fieldsim.fleet import Fleet, SimConfig
from fieldsim.simulate import simulate

__all__ = ["Fleet", "SimConfig", "simulate"]

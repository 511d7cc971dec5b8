"""battery-lib 0.6: remaining capacity and runtime from one voltage reading (API generation 1)."""

from battery_lib.estimate import Estimate, estimate

__version__ = "0.6.0"

__all__ = ["Estimate", "__version__", "estimate"]

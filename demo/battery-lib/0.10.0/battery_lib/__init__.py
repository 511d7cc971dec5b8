"""battery-lib 0.10: remaining capacity and runtime of thermostat battery packs (API generation 2)."""

from battery_lib.predictor import Predictor

__version__ = "0.10.0"
API_GENERATION = 2

__all__ = ["API_GENERATION", "Predictor", "__version__"]

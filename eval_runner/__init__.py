"""fleet-eval: evaluate battery-library versions on field data and roll the winner out to the fleet."""

__version__ = "0.1.0"

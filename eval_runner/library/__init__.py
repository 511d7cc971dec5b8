"""One interface to whichever battery-lib version is installed, whatever its API generation.

Use ``load_predictor()`` to get a ``Predictor`` and ``installed_library_version()`` to record which
version ran. Each environment (runner image, test venv) has exactly one battery-lib installed.
"""

from __future__ import annotations

from eval_runner.library.base import Predictor, empty_predictions, normalise_predictions
from eval_runner.library.loader import installed_library_version, library_generation, load_predictor

__all__ = [
    "Predictor",
    "empty_predictions",
    "installed_library_version",
    "library_generation",
    "load_predictor",
    "normalise_predictions",
]

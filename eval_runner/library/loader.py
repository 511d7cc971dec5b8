"""Find the installed battery_lib, detect its API generation and build the matching adapter."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path
from types import ModuleType

from packaging.version import InvalidVersion, Version

from eval_runner.errors import ConfigError
from eval_runner.library.base import Predictor
from eval_runner.library.generation1 import Generation1Predictor
from eval_runner.library.generation2 import Generation2Predictor

MODULE_NAME = "battery_lib"
DISTRIBUTION_NAME = "battery-lib"
KNOWN_GENERATIONS = (1, 2)
# What a runner image was built for (images/runner/Dockerfile writes it): the resolved library version,
# "0.9.0" for a release or "git-<12 hex>" for a commit, under which its results are stored. A commit's
# own metadata says only what version it was developing (0.9.0 at tag v0.9.0, 0.11.0.dev0 on main),
# which would collide with the release of that name.
BUILD_RECORD = Path("/opt/runner/library-build.json")


def _import_library() -> ModuleType:
    try:
        return importlib.import_module(MODULE_NAME)
    except ImportError as error:
        raise ConfigError(
            f"the {MODULE_NAME} module is not installed in this environment ({error}); run the evaluation in "
            f"the runner image of the version, or install exactly one {DISTRIBUTION_NAME} version"
        ) from error


def installed_library_version(module: ModuleType | None = None) -> str:
    """Return the version of the imported battery_lib (``__version__``, else the distribution's)."""
    module = module if module is not None else _import_library()
    version = getattr(module, "__version__", None)
    if isinstance(version, str) and version:
        return version
    try:
        return importlib.metadata.version(DISTRIBUTION_NAME)
    except importlib.metadata.PackageNotFoundError as error:
        raise ConfigError(
            f"{MODULE_NAME} is importable but has no __version__ and no {DISTRIBUTION_NAME} distribution metadata"
        ) from error


def library_generation(module: ModuleType) -> int:
    """Detect the API generation of ``module``: ``API_GENERATION``, or 1 for the 0.6 API that predates it."""
    declared = getattr(module, "API_GENERATION", None)
    if declared is None:
        if callable(getattr(module, "estimate", None)):
            return 1
        raise ConfigError(
            f"{MODULE_NAME} {getattr(module, '__version__', '?')} has neither API_GENERATION nor estimate(): "
            "unknown API generation"
        )
    if isinstance(declared, bool) or not isinstance(declared, int) or declared not in KNOWN_GENERATIONS:
        raise ConfigError(
            f"{MODULE_NAME} {getattr(module, '__version__', '?')} declares API_GENERATION={declared!r}; "
            f"this eval_runner knows generations {list(KNOWN_GENERATIONS)}"
        )
    if declared == 2 and not callable(getattr(module, "Predictor", None)):
        raise ConfigError(f"{MODULE_NAME} declares API_GENERATION=2 but has no Predictor class")
    if declared == 1 and not callable(getattr(module, "estimate", None)):
        raise ConfigError(f"{MODULE_NAME} declares API_GENERATION=1 but has no estimate() function")
    return declared


def built_library_version(installed: str, record: Path = BUILD_RECORD) -> str:
    """The version this image's results are keyed by: its build record's, else the installed one.

    A build record naming a release must agree with the installed package; a mismatch means a
    mislabelled image, and evaluating under the wrong name would publish wrong results.
    """
    try:
        recorded = str(json.loads(record.read_text())["library_version"])
    except FileNotFoundError:
        return installed
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"runner build record {record} is unreadable ({error})") from error
    if recorded.startswith("git-"):
        return recorded
    try:
        same = Version(recorded) == Version(installed)
    except InvalidVersion:
        same = recorded == installed
    if not same:
        raise ConfigError(
            f"this image was built for {DISTRIBUTION_NAME} {recorded} ({record}) but has {installed} installed"
        )
    return recorded


def load_predictor(module: ModuleType | None = None, *, build_record: Path = BUILD_RECORD) -> Predictor:
    """Build the adapter for the installed battery_lib (or for ``module``, in tests)."""
    module = module if module is not None else _import_library()
    version = built_library_version(installed_library_version(module), build_record)
    generation = library_generation(module)
    if generation == 1:
        return Generation1Predictor(module, version)
    return Generation2Predictor(module, version)

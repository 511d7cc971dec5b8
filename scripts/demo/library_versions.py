"""The demo's battery-lib versions and their wheels (built once per source digest by the tests' index)."""

from __future__ import annotations

from pathlib import Path

from tests.services.package_index import build_wheel, library_versions

DEMO_VERSIONS = ("0.6.0", "0.8.0", "0.9.0", "0.10.0")


def wheels() -> list[Path]:
    """Every demo version's wheel, in release order."""
    return [build_wheel(v) for v in library_versions()]

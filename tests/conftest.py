"""Test-suite wiring: tier markers by directory, and fixture modules from tests/fixtures/ as plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent

# Every module in tests/fixtures/ is a fixture plugin (one per area, so areas never edit one file).
pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}" for path in (_HERE / "fixtures").glob("*.py") if path.stem != "__init__"
)

_TIER_MARKERS = {"integration": "integration", "e2e": "e2e"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its tier directory, so `-m "not e2e"` selects without per-file boilerplate."""
    for item in items:
        parts = Path(str(item.path)).relative_to(_HERE).parts
        if parts and parts[0] in _TIER_MARKERS:
            item.add_marker(getattr(pytest.mark, _TIER_MARKERS[parts[0]]))

"""Test-suite wiring: tier markers by directory (each tier's conftest imports the fixtures it uses)."""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent

# The marks every test of a tier directory carries, so `-m "not e2e"` selects without per-file boilerplate.
_TIER_MARKS = {
    "integration": [pytest.mark.integration],
    "e2e": [
        pytest.mark.e2e,
        # argo-server's certificate is self-signed; the tests talk to it without verification on purpose.
        pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
        # Hera 7.1's WorkflowsService serialises with pydantic's deprecated .json(); not ours to fix.
        pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    ],
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test the marks of its tier directory."""
    for item in items:
        parts = Path(str(item.path)).relative_to(_HERE).parts
        for mark in _TIER_MARKS.get(parts[0], []) if parts else []:
            item.add_marker(mark)

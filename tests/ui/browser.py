"""Headless Debian chromium under Playwright, and the screenshots each browser test leaves for a person.

Playwright drives the system's chromium (`make setup` installs Debian's package); it never downloads a
browser of its own. Screenshots go to ``.results/browser/<test>/`` (``FLEET_EVAL_BROWSER_RESULTS``
moves them), numbered in the order they were taken, with the page's console errors beside them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Page, ViewportSize

REPO = Path(__file__).resolve().parents[2]
RESULTS = Path(os.environ.get("FLEET_EVAL_BROWSER_RESULTS", REPO / ".results" / "browser"))
# A window as wide as a laptop's: the Argo UI hides its side panels below 1024 px.
# Playwright's 5 s default is shorter than a Streamlit rerun or an argo-server watch event takes on two
# cores busy with a kind cluster; every wait for what a person would see gets this long instead.
TIMEOUT_MS = 60_000
VIEWPORT: ViewportSize = {"width": 1600, "height": 1000}


def chromium_executable() -> str:
    """Path of the system chromium (FLEET_EVAL_CHROMIUM overrides); fails naming the package to install."""
    found = os.environ.get("FLEET_EVAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise FileNotFoundError(
            "no chromium on PATH: the browser tests drive Debian's chromium package (`make setup` installs it)"
        )
    return found


def results_folder(test_name: str) -> Path:
    """An empty folder for one test's screenshots (the previous run's are replaced)."""
    folder = RESULTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name).strip("-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@dataclass
class Screenshots:
    """Numbered screenshots of one page, and what its console reported, in one test's folder."""

    page: Page
    folder: Path
    taken: list[Path] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"console error: {message.text} ({message.location.get('url', '')})")

    def take(self, label: str, *, full_page: bool = False) -> Path:
        """Save the page as ``NN-label.png``; returns the path (tests name it in their failure messages)."""
        path = self.folder / f"{len(self.taken) + 1:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path

    def close(self) -> None:
        """A last screenshot (where a failing test stopped) and the console log, if any."""
        with contextlib.suppress(Error):  # the page or browser is gone already: nothing more to show
            self.take("last")
        if self.console_errors:
            (self.folder / "console-errors.txt").write_text("\n".join(self.console_errors) + "\n")

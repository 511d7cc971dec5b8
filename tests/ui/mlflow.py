"""MLflow's web UI as a data scientist uses it: an experiment's runs, a registered model's aliases."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

# MLflow's single-page app is ~10 MB of script: its first load on two busy cores took over a minute.
FIRST_LOAD_MS = 240_000


class MlflowUi:
    """One browser page on the MLflow tracking server's UI (the single-page app's # routes)."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url.rstrip("/")

    def open_runs(self, experiment_id: str) -> None:
        """The experiment's runs table.

        MLflow 3 opens an experiment on its GenAI overview (traces, none here); the runs are the
        "Training runs" page of the experiment.
        """
        self.page.goto(f"{self.url}/#/experiments/{experiment_id}/runs")
        expect(self.page.get_by_text(re.compile(r"\d+ matching runs?"))).to_be_visible(timeout=FIRST_LOAD_MS)

    def run_link(self, name: str) -> Locator:
        """A run's name in the runs table (a link to the run's page)."""
        return self.page.get_by_role("link", name=name, exact=True)

    def open_model(self, name: str) -> None:
        """A registered model's page with its versions table."""
        self.page.goto(f"{self.url}/#/models/{name}")
        expect(self.page.get_by_role("row").first).to_be_visible(timeout=FIRST_LOAD_MS)

    def version_with_alias(self, alias: str) -> Locator:
        """The row of the versions table whose Aliases column shows ``@ alias``."""
        tag = self.page.get_by_text(re.compile(rf"^@\s*{re.escape(alias)}$"))  # the alias tag, exactly
        return self.page.get_by_role("row").filter(has=tag)

"""The review UI (Streamlit) as a domain expert uses it: pick a month and a sample, approve it, save."""

from __future__ import annotations

import time

from playwright.sync_api import Locator, Page, expect

# Streamlit reruns the script after every interaction; a first render of a month loads its dataset.
RENDER_TIMEOUT_MS = 120_000


class ReviewPage:
    """One browser page on the review UI."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url

    def open(self) -> None:
        """Load the app and wait until its first run has rendered the sample section."""
        self.page.goto(self.url)
        self.settle()
        expect(self.page.get_by_role("heading", name="Monthly dataset review")).to_be_visible()

    def settle(self) -> None:
        """Wait until Streamlit has finished the current script run (its status widget is gone)."""
        # The status widget appears a moment after an interaction: give it that moment, then wait it out.
        time.sleep(0.5)
        self.page.wait_for_selector('[data-testid="stSelectbox"]', timeout=RENDER_TIMEOUT_MS)
        expect(self.page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=RENDER_TIMEOUT_MS)
        expect(self.page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=RENDER_TIMEOUT_MS)

    def _selectbox(self, label: str) -> Locator:
        return self.page.get_by_test_id("stSelectbox").filter(has=self.page.get_by_text(label, exact=True))

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` in the selectbox labelled ``label``."""
        self._selectbox(label).click()
        self.page.get_by_role("option", name=option, exact=True).click()
        self.settle()

    def _type(self, label: str, text: str) -> None:
        field = self.page.get_by_label(label, exact=True)
        field.fill(text)
        field.press("Enter")  # a Streamlit text input commits on Enter (or blur)
        self.settle()

    def set_reviewer(self, name: str) -> None:
        """The reviewer's name in the sidebar (recorded in review.json)."""
        self._type("Your name (recorded in review.json)", name)

    def show_sample(self, sample_id: str) -> None:
        """Filter the table to one sample, so the sample section shows it."""
        self._type("Sample id contains", sample_id)
        expect(self.sample_state(sample_id)).to_be_visible()

    def sample_state(self, sample_id: str) -> Locator:
        """The line that says whether ``sample_id`` is approved, rejected or undecided."""
        return self.page.get_by_text(f"{sample_id} is ")

    def approve_shown_sample(self) -> None:
        """Click Approve on the sample shown."""
        self.page.get_by_role("button", name="Approve", exact=True).click()
        self.settle()

    def save(self, reviewer: str) -> str:
        """Click "Save review to S3" and return the confirmation the app shows for ``reviewer``.

        A month reviewed before shows its last save already; the wait is for this reviewer's.
        """
        button = self.page.get_by_role("button", name="Save review to S3")
        expect(button).to_be_enabled()
        button.click()
        saved = self.page.get_by_test_id("stAlert").filter(has_text=f"Saved by {reviewer} at")
        expect(saved).to_be_visible()
        self.settle()
        return saved.inner_text()

    def scroll_to_plot(self) -> None:
        """Wait until the sample's figure (an <img> Streamlit serves) has loaded, and scroll it into view.

        Streamlit scrolls its main column itself, so a full-page screenshot would not reach the figure.
        """
        plot = self.page.locator('[data-testid="stImage"] img, [data-testid="stImageContainer"] img').first
        expect(plot).to_have_js_property("complete", True, timeout=RENDER_TIMEOUT_MS)
        assert plot.evaluate("img => img.naturalWidth") > 0, "the sample's figure loaded empty"
        plot.scroll_into_view_if_needed()

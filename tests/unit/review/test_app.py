"""The review UI with Streamlit's AppTest on an in-memory store: filters, bulk, per-sample, save."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import eval_runner.review
from eval_runner.keys import review_json_key
from eval_runner.review.reader import load_review
from tests.fakes import MemoryObjectStore
from tests.fixtures.dataset import MONTH, SAMPLE_IDS

APP = str(Path(eval_runner.review.__file__).parent / "app.py")


def _app(store: MemoryObjectStore) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["store"] = store
    return at.run()


def test_review_in_the_ui_and_save(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, digest = tiny_month
    at = _app(store)
    assert not at.exception
    assert at.sidebar.selectbox(key="month").value == "2026-04"
    assert "Reviewed 0 / 3" in at.get("progress")[0].proto.text
    assert len(at.get("image")) == 1  # the per-sample plot rendered

    at.sidebar.selectbox(key="f_suggestion").select("suggested").run()
    at.button(key="bulk_suggest").click().run()  # approves the one suggested sample
    at.sidebar.selectbox(key="f_suggestion").select("all").run()
    at.selectbox(key="sample").select(SAMPLE_IDS[2]).run()
    at.button(key="reject_one").click().run()
    assert "Reviewed 2 / 3" in at.get("progress")[0].proto.text

    assert at.button(key="save").disabled  # nobody to record yet
    at.sidebar.text_input(key="reviewer").input("Ana Reviewer").run()
    at.button(key="save").click().run()
    assert not at.exception
    assert "Revision 1 (review hash " in at.success[0].value and "saved by Ana Reviewer" in at.success[0].value
    review = load_review(store, MONTH, digest)
    assert review.approved == {SAMPLE_IDS[0]}
    assert review.rejected == {SAMPLE_IDS[2]}
    assert review.unmentioned == 1
    assert review.reviewer == "Ana Reviewer"


def test_a_saved_review_is_the_starting_point(tiny_month: tuple[MemoryObjectStore, str]) -> None:
    store, _ = tiny_month
    at = _app(store)
    at.button(key="bulk_reject").click().run()
    at.sidebar.text_input(key="reviewer").input("ana").run()
    at.button(key="save").click().run()
    again = _app(store)
    assert "Reviewed 3 / 3" in again.get("progress")[0].proto.text
    assert store.exists(review_json_key(MONTH, 1))
    again.button(key="bulk_approve").click().run()
    again.sidebar.text_input(key="reviewer").input("bo").run()
    again.button(key="save").click().run()
    # A second save is a second revision; the first stays as it was.
    assert store.exists(review_json_key(MONTH, 1)) and store.exists(review_json_key(MONTH, 2))
    assert "Revision 2" in again.success[0].value


def test_without_datasets_the_page_says_what_to_do(dataset_store: MemoryObjectStore) -> None:
    at = _app(dataset_store)
    assert not at.exception
    assert "dataset build" in at.info[0].value


@pytest.mark.parametrize("header", ["X-Forwarded-User", "x-auth-request-user"])
def test_proxy_identity_wins(header: str) -> None:
    from eval_runner.review.session import reviewer_from_headers

    assert reviewer_from_headers({header: " ana@example.org ", "Host": "x"}) == "ana@example.org"
    assert reviewer_from_headers({"Host": "x"}) is None

"""`eval-runner review serve` as reviewers get it: a Streamlit server, driven in headless chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest
from PIL import Image
from playwright.sync_api import expect

from eval_runner.dataset.reader import LoadedDataset
from eval_runner.review.reader import load_review
from eval_runner.storage import S3ObjectStore
from tests.fixtures.dataset import MONTH
from tests.services.process import free_port
from tests.ui.browser import Screenshots
from tests.ui.review import ReviewPage

EVAL_RUNNER = str(Path(sys.executable).parent / "eval-runner")
TAB_BLUE = (31, 119, 180)  # matplotlib's first colour: the voltage curve


@pytest.fixture
def server(built: LoadedDataset, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [EVAL_RUNNER, "review", "serve", "--port", str(port), "--address", "127.0.0.1"],
            env=os.environ.copy(),  # the `built` fixture set FLEET_EVAL_S3_* for this test
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        # Streamlit's first start imports for a minute on two cores busy with a kind cluster build.
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"review serve did not come up: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


def test_serve_answers_health_and_page(server: str) -> None:
    assert "<title>Streamlit</title>" in httpx.get(server, timeout=5).text


@pytest.mark.timeout(300)
def test_chromium_shows_the_samples_plot(server: str, screenshots: Screenshots) -> None:
    review = ReviewPage(screenshots.page, server)
    review.open()
    review.scroll_to_plot()
    time.sleep(1)  # let the last layout pass settle before the picture
    shot = screenshots.take("review-ui")
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    blue = int((np.abs(pixels - np.array(TAB_BLUE, dtype=np.int16)) < 25).all(axis=2).sum())
    assert blue > 300, f"no voltage curve in the screenshot ({blue} curve-coloured pixels), see {shot}"


@pytest.mark.timeout(300)
def test_approving_a_sample_in_the_browser_saves_the_review_to_s3(
    server: str, built: LoadedDataset, object_store: S3ObjectStore, screenshots: Screenshots
) -> None:
    rejected_by_suggestion = built.dataset.filter(~pl.col("suggest_use"))["sample_id"]
    assert rejected_by_suggestion.len() > 0, "the simulated month has no sample the extractor advises against"
    sample_id = str(rejected_by_suggestion[0])
    review = ReviewPage(screenshots.page, server)
    review.open()
    review.set_reviewer("browser test")
    review.show_sample(sample_id)
    expect(review.sample_state(sample_id)).to_contain_text("is undecided")
    review.approve_shown_sample()
    expect(review.sample_state(sample_id)).to_contain_text("is approved")
    screenshots.take("approved")
    confirmation = review.save("browser test")
    screenshots.take("saved")
    assert "1 approved" in confirmation, confirmation

    saved = load_review(object_store, MONTH, built.content_hash)
    assert saved.approved == {sample_id}
    assert saved.reviewer == "browser test"

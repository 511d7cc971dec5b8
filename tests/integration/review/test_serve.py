"""`eval-runner review serve` as reviewers get it: a Streamlit server, rendered by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from eval_runner.dataset.reader import LoadedDataset
from tests.services.process import free_port

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
        deadline = time.monotonic() + 60
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
        process.wait(timeout=20)


def test_serve_answers_health_and_page(server: str) -> None:
    assert "<title>Streamlit</title>" in httpx.get(server, timeout=5).text


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium package is not installed")
def test_chromium_screenshot_shows_the_plots(server: str, tmp_path: Path) -> None:
    shot = tmp_path / "review.png"
    subprocess.run(
        [
            str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--window-size=1400,2600", "--virtual-time-budget=40000", f"--screenshot={shot}", server,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    kept = Path(os.environ.get("FLEET_EVAL_SCREENSHOT_DIR", tmp_path)) / "review-ui.png"
    if kept != shot:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, kept)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    blue = int((np.abs(pixels - np.array(TAB_BLUE, dtype=np.int16)) < 25).all(axis=2).sum())
    assert blue > 300, f"no voltage curve in the screenshot ({blue} curve-coloured pixels), see {kept}"

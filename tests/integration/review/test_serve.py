"""`eval-runner review serve` as reviewers get it: a Streamlit server, rendered by headless Chromium."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websocket
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


class DevTools:
    """Just enough of the Chrome DevTools Protocol to load a page, wait for it, and screenshot it."""

    def __init__(self, chromium: str, profile: Path) -> None:
        port = free_port()
        self.process = subprocess.Popen(
            [
                chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--window-size=1400,2600", f"--remote-debugging-port={port}", "--remote-allow-origins=*",
                f"--user-data-dir={profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (httpx.TransportError, StopIteration, ValueError):
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.3)
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0

    def call(self, method: str, **params: object) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def wait_for(self, expression: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value"):
                return True
            time.sleep(0.5)
        return False

    def close(self) -> None:
        if hasattr(self, "socket"):
            self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=20)


# The app has rendered its plot when the figure's <img> has loaded and no element is still a skeleton.
PLOT_RENDERED = (
    '(() => { const imgs = [...document.querySelectorAll(\'[data-testid="stImage"] img, '
    '[data-testid="stImageContainer"] img\')];'
    " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0)"
    " && document.querySelectorAll('[data-testid=\"stSkeleton\"]').length === 0; })()"
)


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium package is not installed")
def test_chromium_screenshot_shows_the_plots(server: str, tmp_path: Path) -> None:
    shot = tmp_path / "review.png"
    browser = DevTools(str(_chromium()), tmp_path / "profile")
    try:
        browser.call("Page.navigate", url=server)
        rendered = browser.wait_for(PLOT_RENDERED, timeout=90)
        time.sleep(1)  # let the last layout pass settle before the picture
        shot.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
    finally:
        browser.close()
    kept = Path(os.environ.get("FLEET_EVAL_SCREENSHOT_DIR", tmp_path)) / "review-ui.png"
    if kept != shot:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, kept)
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    blue = int((np.abs(pixels - np.array(TAB_BLUE, dtype=np.int16)) < 25).all(axis=2).sum())
    assert rendered, f"the plot did not render within 90 s, see {kept}"
    assert blue > 300, f"no voltage curve in the screenshot ({blue} curve-coloured pixels), see {kept}"

"""Resolution against real HTTP servers: a tiny PEP 503 index, pypiserver, a registry, and a Git repo."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from eval_runner.cli import main
from eval_runner.errors import ConfigError
from eval_runner.versions import LsRemote, Resolver, SimpleIndex, image_digest, image_exists

FILES = [
    "battery_lib-0.8.0-py3-none-any.whl",
    "battery_lib-0.9.0-py3-none-any.whl",
    "battery-lib-0.9.0.tar.gz",
]
PRESENT_TAGS = {"0.8.0-runner-0.1.0"}


class _Handler(BaseHTTPRequestHandler):
    """A PEP 503 index for battery-lib and a registry /v2/ manifest endpoint on one port."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/simple/battery-lib":
            body = "".join(f'<a href="/packages/{f}">{f}</a>\n' for f in FILES).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def do_HEAD(self) -> None:
        tag = self.path.rsplit("/", 1)[-1]
        found = self.path.startswith("/v2/fleet-eval/runner/manifests/") and tag in PRESENT_TAGS
        self.send_response(200 if found else 404)
        if found:
            self.send_header("Docker-Content-Digest", "sha256:" + "ab" * 32)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _resolver(client: httpx.Client, index_url: str, git_url: str | None = None) -> Resolver:
    return Resolver(
        index=SimpleIndex(client, index_url),
        index_url=index_url,
        git=LsRemote(git_url) if git_url else None,
        git_url=git_url,
        runner_version="0.1.0",
        image_repository="localhost:5001/fleet-eval/runner",
    )


def test_labels_resolve_against_a_pep503_index(server: str) -> None:
    with httpx.Client() as client:
        resolver = _resolver(client, f"{server}/simple/")
        now = datetime(2026, 11, 1, tzinfo=UTC)
        latest = resolver.resolve("latest", now=now)
        pinned = resolver.resolve("v0.8.0", now=now)
    assert latest.library_version == "0.9.0"
    assert latest.requirement == "battery-lib==0.9.0"
    assert latest.image == "localhost:5001/fleet-eval/runner:0.9.0-runner-0.1.0"
    assert latest.resolved_at == "2026-11-01T00:00:00+00:00"
    assert (pinned.label, pinned.library_version) == ("v0.8.0", "0.8.0")


def test_labels_that_mean_the_same_pin_collapse(server: str) -> None:
    with httpx.Client() as client:
        resolved = _resolver(client, f"{server}/simple/").resolve_all(["latest", "0.9.0", "0.8.0"])
    assert [(r.label, r.library_version) for r in resolved] == [("latest", "0.9.0"), ("0.8.0", "0.8.0")]


def test_unknown_project_is_a_config_error(server: str) -> None:
    with httpx.Client() as client, pytest.raises(ConfigError, match="no project"):
        SimpleIndex(client, f"{server}/simple/").versions("no-such-lib")


def test_registry_probe_tells_present_from_missing(server: str) -> None:
    with httpx.Client() as client:
        assert image_exists(client, server, "fleet-eval/runner", "0.8.0-runner-0.1.0")
        assert not image_exists(client, server, "fleet-eval/runner", "0.9.0-runner-0.1.0")
        assert image_digest(client, server, "fleet-eval/runner", "0.8.0-runner-0.1.0") == "sha256:" + "ab" * 32


def test_cli_records_resolutions_and_lists_missing_images(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLEET_EVAL_INDEX_URL", f"{server}/simple/")
    code = main(
        [
            "versions",
            "resolve",
            "--label",
            '["0.8.0", "latest"]',
            "--image-repository",
            "localhost:5001/fleet-eval/runner",
            "--registry-url",
            server,
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    recorded = json.loads((tmp_path / "resolutions.json").read_text())
    missing = json.loads((tmp_path / "missing.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert printed == recorded
    assert [r["library_version"] for r in recorded] == ["0.8.0", "0.9.0"]
    assert [r["image_tag"] for r in missing] == ["0.9.0-runner-0.1.0"]
    assert [r["image_digest"] for r in recorded] == ["sha256:" + "ab" * 32, None]
    assert summary["images_missing"] == 1
    assert summary["resolved"] == {"0.8.0": "0.8.0", "latest": "0.9.0"}
    assert json.loads((tmp_path / "library_versions.json").read_text()) == ["0.8.0", "0.9.0"]
    assert (tmp_path / "image.txt").read_text() == "localhost:5001/fleet-eval/runner:0.8.0-runner-0.1.0"
    assert (tmp_path / "library_version.txt").read_text() == "0.8.0"


def test_cli_bad_label_exits_2(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEET_EVAL_INDEX_URL", f"{server}/simple/")
    assert main(["versions", "resolve", "--label", "newest", "--image-repository", "r/x"]) == 2


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_refs_resolve_to_commits(tmp_path: Path, server: str) -> None:
    repo = tmp_path / "battery-lib"
    env = ["-c", "user.email=t@example.invalid", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README").write_text("x")
    subprocess.run(["git", "-C", str(repo), "add", "README"], check=True)
    subprocess.run(["git", "-C", str(repo), *env, "commit", "-qm", "one"], check=True)
    subprocess.run(["git", "-C", str(repo), *env, "tag", "-a", "v1", "-m", "v1"], check=True)
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    with httpx.Client() as client:
        resolver = _resolver(client, f"{server}/simple/", git_url=repo.as_uri())
        by_branch = resolver.resolve("git:main")
        by_tag = resolver.resolve("git:v1")
        with pytest.raises(ConfigError, match="does not exist"):
            resolver.resolve("git:nope")
    assert by_branch.git_commit == by_tag.git_commit == head
    assert by_branch.library_version == f"git-{head[:12]}"
    assert by_branch.requirement == f"battery-lib @ git+{repo.as_uri()}@{head}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = Path(sys.executable).with_name("pypi-server")
    if not binary.exists():
        pytest.skip("pypi-server is not installed in this environment (dev dependency pypiserver)")
    packages = tmp_path_factory.mktemp("packages")
    for name in FILES:
        # pypiserver lists files by name; their content does not matter for resolution.
        (packages / name).write_bytes(b"")
    port = _free_port()
    proc = subprocess.Popen(
        [str(binary), "run", "-i", "127.0.0.1", "-p", str(port), "-a", ".", "-P", ".", str(packages)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail(f"pypi-server did not come up on {url}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_labels_resolve_against_pypiserver(pypiserver: str) -> None:
    with httpx.Client() as client:
        resolver = _resolver(client, pypiserver)
        assert resolver.resolve("latest").library_version == "0.9.0"
        assert resolver.resolve("0.8.0").requirement == "battery-lib==0.8.0"

"""Resolution against the real private index (pypiserver with the demo wheels) and a Git repository."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from eval_runner.cli import main
from eval_runner.errors import ConfigError
from eval_runner.git_repository import GitRepository
from eval_runner.package_index import SimpleIndex
from eval_runner.registry import image_digest, image_exists
from eval_runner.resolution import Resolver
from eval_runner.runner_profiles import RunnerContext
from tests.fixtures.runner_context import TEST_CONTEXT_DIGEST as CONTEXT_DIGEST
from tests.services.package_index import LIBRARY_ROOT, PackageIndex

RUNNER = "localhost:5001/fleet-eval/runner"


@pytest.fixture
def resolver(package_index: PackageIndex, runner_context: Path) -> Iterator[Resolver]:
    with httpx.Client() as client:
        yield Resolver(
            index=SimpleIndex(client, package_index.simple_url),
            index_url=package_index.simple_url,
            git=GitRepository(package_index.git_repository.as_uri()),
            context=RunnerContext.load(runner_context),
            runner_version="0.1.0",
            image_repository=RUNNER,
        )


def test_a_release_pins_its_wheel_by_the_hash_the_index_publishes(
    resolver: Resolver, package_index: PackageIndex
) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    pinned = resolver.resolve("v0.9.0", now=now)
    wheel = package_index.wheels["0.9.0"]
    assert (pinned.label, pinned.kind, pinned.library_version) == ("v0.9.0", "release", "0.9.0")
    assert pinned.wheel == wheel.name
    assert pinned.wheel_sha256 == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert pinned.install == f"battery-lib==0.9.0 --hash=sha256:{pinned.wheel_sha256}"
    assert pinned.profile == "runtime"
    assert pinned.image == f"{RUNNER}:0.9.0-runner-0.1.0-{CONTEXT_DIGEST[:12]}"
    assert pinned.context_digest == CONTEXT_DIGEST
    assert pinned.resolved_at == "2026-11-01T00:00:00+00:00"


def test_latest_is_the_newest_release_and_numpy_1_libraries_get_their_profile(
    resolver: Resolver, package_index: PackageIndex
) -> None:
    newest = max(package_index.wheels, key=lambda v: tuple(int(x) for x in v.split(".")))
    assert resolver.resolve("latest").library_version == newest
    assert resolver.resolve("0.6.0").profile == "runtime-numpy1"


def test_labels_that_mean_the_same_pin_collapse(resolver: Resolver) -> None:
    resolved = resolver.resolve_all(["v0.9.0", "0.9.0", "0.8.0"])
    assert [(r.label, r.library_version) for r in resolved] == [("v0.9.0", "0.9.0"), ("0.8.0", "0.8.0")]


def test_a_release_the_index_lacks_is_a_config_error_naming_it(resolver: Resolver) -> None:
    with pytest.raises(ConfigError, match=r"'0\.7\.3': battery-lib 0\.7\.3 is not on .*has: 0\.6\.0"):
        resolver.resolve("0.7.3")


def test_git_labels_resolve_branches_tags_and_abbreviated_commits(
    resolver: Resolver, package_index: PackageIndex, tmp_path: Path
) -> None:
    commits = package_index.git_commits
    by_tag = resolver.resolve("git:v0.9.0")
    by_branch = resolver.resolve("git:main")
    by_commit = resolver.resolve(f"git:{commits['0.8.0'][:12]}")
    assert by_tag.git_commit == commits["0.9.0"]
    assert by_branch.git_commit == commits[max(commits, key=lambda v: tuple(int(x) for x in v.split(".")))]
    assert by_commit.git_commit == commits["0.8.0"]
    assert by_commit.library_version == f"git-{commits['0.8.0'][:12]}"
    assert by_commit.wheel is None and by_commit.install == ""
    assert by_commit.requirement == f"battery-lib @ git+{package_index.git_repository.as_uri()}@{commits['0.8.0']}"
    assert resolver.resolve(f"git:{commits['0.6.0']}").profile == "runtime-numpy1"
    with pytest.raises(ConfigError, match=r"git ref 'nope' does not exist"):
        resolver.resolve("git:nope")


def test_the_exact_label_of_a_pin_resolves_to_the_same_pin_after_its_label_moved(
    resolver: Resolver, package_index: PackageIndex
) -> None:
    by_branch = resolver.resolve("git:main")
    assert by_branch.exact_label == f"git:{by_branch.git_commit}"
    again = resolver.resolve(by_branch.exact_label)
    assert (again.library_version, again.git_commit, again.image_tag) == (
        by_branch.library_version,
        by_branch.git_commit,
        by_branch.image_tag,
    )
    newest = resolver.resolve("latest")
    assert newest.exact_label == newest.library_version
    assert resolver.resolve(newest.exact_label).wheel_sha256 == newest.wheel_sha256


def test_a_git_commit_exports_exactly_its_tree(package_index: PackageIndex, tmp_path: Path) -> None:
    repo = GitRepository(package_index.git_repository.as_uri())
    repo.export(package_index.git_commits["0.8.0"], tmp_path / "src")
    exported = {p.relative_to(tmp_path / "src"): p.read_bytes() for p in (tmp_path / "src").rglob("*") if p.is_file()}
    source = LIBRARY_ROOT / "0.8.0"
    expected = {
        p.relative_to(source): p.read_bytes() for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    assert exported == expected


PRESENT = {f"0.8.0-runner-0.1.0-{CONTEXT_DIGEST[:12]}"}


class _Registry(BaseHTTPRequestHandler):
    """A registry's manifest endpoint (HEAD /v2/<repo>/manifests/<tag>) with a fixed set of tags."""

    def do_HEAD(self) -> None:
        tag = self.path.rsplit("/", 1)[-1]
        found = self.path.startswith("/v2/fleet-eval/runner/manifests/") and tag in PRESENT
        self.send_response(200 if found else 404)
        if found:
            self.send_header("Docker-Content-Digest", "sha256:" + "ab" * 32)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_registry_probe_tells_present_from_missing(registry: str) -> None:
    with httpx.Client() as client:
        present = next(iter(PRESENT))
        assert image_exists(client, registry, "fleet-eval/runner", present)
        assert not image_exists(client, registry, "fleet-eval/runner", "0.9.0-runner-0.1.0-000000000000")
        assert image_digest(client, registry, "fleet-eval/runner", present) == "sha256:" + "ab" * 32


def test_cli_records_resolutions_lists_missing_images_and_exports_git_sources(
    registry: str,
    package_index: PackageIndex,
    runner_context: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FLEET_EVAL_INDEX_URL", package_index.simple_url)
    monkeypatch.setenv("FLEET_EVAL_INDEX_GIT_URL", package_index.git_repository.as_uri())
    common = ["--image-repository", RUNNER, "--registry-url", registry, "--runner-context", str(runner_context)]
    labels = '["0.8.0", "0.9.0", "git:v0.6.0"]'
    code = main(["versions", "resolve", "--label", labels, *common, "--output-dir", str(tmp_path)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    recorded = json.loads((tmp_path / "resolutions.json").read_text())
    missing = json.loads((tmp_path / "missing.json").read_text())
    summary = json.loads((tmp_path / "summary.json").read_text())
    git_version = f"git-{package_index.git_commits['0.6.0'][:12]}"
    assert printed == recorded
    assert [r["library_version"] for r in recorded] == ["0.8.0", "0.9.0", git_version]
    assert [r["library_version"] for r in missing] == ["0.9.0", git_version]
    assert missing[0]["install"].startswith("battery-lib==0.9.0 --hash=sha256:")
    assert missing[1]["install"] == ""
    assert [r["image_digest"] for r in recorded] == ["sha256:" + "ab" * 32, None, None]
    assert summary["images_missing"] == 2
    assert (tmp_path / "library-src" / git_version / "pyproject.toml").is_file()
    assert not (tmp_path / "library-src" / "0.9.0").exists()
    assert (tmp_path / "library_version.txt").read_text() == "0.8.0"
    assert (tmp_path / "exact_label.txt").read_text() == "0.8.0"


def test_cli_pin_records_digests_without_resolving_labels_again(
    registry: str, package_index: PackageIndex, runner_context: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_EVAL_INDEX_URL", package_index.simple_url)
    common = ["--image-repository", RUNNER, "--registry-url", registry, "--runner-context", str(runner_context)]
    assert main(["versions", "resolve", "--label", "0.8.0", *common, "--output-dir", str(tmp_path / "r")]) == 0
    resolutions = (tmp_path / "r" / "resolutions.json").read_text()
    pin = ["versions", "pin", "--resolutions", resolutions, "--registry-url", registry]
    assert main([*pin, "--registry-repository", "fleet-eval/runner", "--output-dir", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "image.txt").read_text() == f"{RUNNER}@sha256:{'ab' * 32}"
    # An image the build did not produce is a data error (exit 3), not a silent fallback to the tag.
    missing = resolutions.replace("0.8.0-runner", "0.8.1-runner")
    assert main([*pin[:3], missing, *pin[4:], "--registry-repository", "fleet-eval/runner"]) == 3


def test_cli_bad_label_exits_2(
    package_index: PackageIndex, runner_context: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEET_EVAL_INDEX_URL", package_index.simple_url)
    args = ["versions", "resolve", "--image-repository", RUNNER, "--runner-context", str(runner_context)]
    assert main([*args, "--label", "newest"]) == 2
    assert main([*args, "--label", "0.7.3"]) == 2

"""A new library version evaluated from nothing but `argo submit`: the cluster builds each missing image.

A platform engineer publishes a battery-lib 0.9.1 (0.9.0 with one coefficient changed) to the private
index, a developer pushes an unreleased commit to the Git server's main branch, and evaluate is submitted
with both, ``latest``, a Git tag and an abbreviated commit: every image that does not exist is built in
the cluster by BuildKit, evaluations publish and record the digest their pod ran, and a second submit
builds nothing. A label that names nothing fails in resolve with exit code 2, before any build. Two
workflows that need one new image at once build it once, and two cold builds on one context install the
same locked package set (each build exports it beside the image).

The cluster outlives a test run (CI runs on the cluster a session left), so the new version and the new
commit are new on every run: ``0.9.1.post<run>`` and a commit whose tree no run has seen. Fixed ones would
find last run's images in the registry and build nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from scripts.demo import cluster
from scripts.demo.argo import Workflow
from scripts.demo.cluster import DATA_BUCKET, GIT_NODE_PORT
from scripts.demo.loop import Loop, image_builds
from tests.services.package_index import LIBRARY_ROOT

pytestmark = pytest.mark.timeout(3600)
RUN = str(int(time.time()))
NEW_VERSION = f"0.9.1.post{RUN}"
LIBRARY_GIT = f"http://127.0.0.1:{GIT_NODE_PORT}/git/battery-lib.git"
GIT_SERVER_COMPONENT = "git"


def _wheel_of_a_new_version(tmp_path: Path, version: str = NEW_VERSION) -> Path:
    """battery-lib ``version``: 0.9.0's sources, version bumped, first float constant 1 % larger."""
    source = tmp_path / f"battery-lib-{version}"
    shutil.copytree(LIBRARY_ROOT / "0.9.0", source, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (source / "pyproject.toml", source / "battery_lib" / "__init__.py"):
        path.write_text(path.read_text().replace('"0.9.0"', f'"{version}"'))
    constants = source / "battery_lib" / "constants.py"
    text, changed = re.subn(
        r"^([A-Z_]+ = )([0-9]+\.[0-9]+)$",
        lambda m: f"{m.group(1)}{float(m.group(2)) * 1.01!r}",
        constants.read_text(),
        count=1,
        flags=re.MULTILINE,
    )
    assert changed == 1, "0.9.0's constants.py has no float constant to change"
    constants.write_text(text)
    dist = tmp_path / f"dist-{version}"
    subprocess.run(["uv", "build", "--wheel", "--quiet", "--out-dir", str(dist), str(source)], check=True)
    (wheel,) = dist.glob("*.whl")
    return wheel


def _push_an_unreleased_commit(tmp_path: Path) -> str:
    """A new commit on main (a comment naming this run in constants.py); returns it.

    The library's repository is read-only over HTTP (http.receivepack false: the Git server serves its
    history, developers push elsewhere), so the commit is made here and fetched into the bare repository
    inside the Git server's pod from a bundle, as a merge by the library's maintainers would land.
    """
    checkout = tmp_path / "battery-lib.git-checkout"
    subprocess.run(["git", "clone", "--quiet", "--branch", "main", LIBRARY_GIT, str(checkout)], check=True)
    constants = checkout / "battery_lib" / "constants.py"
    constants.write_text(constants.read_text() + f"# unreleased change of e2e run {RUN}\n")
    identity = ["-c", "user.name=e2e developer", "-c", "user.email=e2e@example.invalid"]
    git = ["git", "-C", str(checkout), *identity]
    subprocess.run([*git, "commit", "--quiet", "-am", f"An unreleased change (e2e run {RUN})"], check=True)
    bundle = tmp_path / "main.bundle"
    subprocess.run([*git, "bundle", "create", "--quiet", str(bundle), "main"], check=True)
    pod = cluster.pod_name(GIT_SERVER_COMPONENT)
    cluster.kubectl("-n", cluster.NAMESPACE, "cp", str(bundle), f"{pod}:/tmp/e2e-main.bundle")
    cluster.kubectl("-n", cluster.NAMESPACE, "exec", pod, "--", "git", "-C", "/srv/git/battery-lib.git", "fetch",
                    "--quiet", "/tmp/e2e-main.bundle", "refs/heads/main:refs/heads/main")  # fmt: skip
    return subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


def _commit_of(ref: str) -> str:
    """The commit a ref of the demo Git server points to, through its host port (peeled for tags)."""
    out = subprocess.run(
        ["git", "ls-remote", LIBRARY_GIT, ref, f"{ref}^{{}}"], check=True, capture_output=True, text=True
    ).stdout
    lines = [line.split("\t") for line in out.splitlines()]
    peeled = [sha for sha, name in lines if name.endswith("^{}")]
    return (peeled or [sha for sha, _ in lines])[0]


def _evaluate(loop: Loop, month: str, labels: list[str]) -> Workflow:
    (wf,) = _evaluate_at_once(loop, month, labels, copies=1)
    return wf


def _evaluate_at_once(loop: Loop, month: str, labels: list[str], *, copies: int) -> list[Workflow]:
    """Submit ``copies`` identical evaluate workflows back to back, then wait for each."""
    params = {"months": json.dumps([month]), "labels": json.dumps(labels), "gate": "false"}
    names = [loop.argo.submit("evaluate", params) for _ in range(copies)]
    return [loop.argo.wait(name, timeout=loop.timeout) for name in names]


def _prune_build_cache() -> None:
    """Empty BuildKit's cache, so that the next build downloads and installs every package afresh."""
    cluster.kubectl("-n", "fleet-infra", "exec", "deploy/buildkitd", "--", "buildctl", "prune", "--all")


def _without_the_library(installed: str) -> list[str]:
    lines = installed.splitlines()
    assert any(line.startswith("battery-lib==") for line in lines), lines
    return [line for line in lines if not line.startswith("battery-lib==")]


def _records(loop: Loop, month: str, library_version: str) -> list[dict[str, object]]:
    prefix = f"capacity/evaluations/year={month[:4]}/month={month[5:]}/version={library_version}/"
    found = []
    for item in loop.s3.list_objects(DATA_BUCKET, prefix=prefix, recursive=True):
        if str(item.object_name).endswith("metrics.json"):
            response = loop.s3.get_object(DATA_BUCKET, str(item.object_name))
            try:
                found.append(dict(json.loads(response.read())))
            finally:
                response.close()
                response.release_conn()
    return found


def test_new_versions_are_built_in_the_cluster_and_evaluated(
    e2e_loop: Loop, e2e_reviewed_months: list[str], tmp_path: Path
) -> None:
    started = time.monotonic()
    month = e2e_reviewed_months[0]
    cluster.load_package_index([_wheel_of_a_new_version(tmp_path)])
    main_commit = _push_an_unreleased_commit(tmp_path)
    assert _commit_of("refs/heads/main") == main_commit
    v080_commit = _commit_of("refs/tags/v0.8.0")
    labels = [NEW_VERSION, "git:main", "latest", "git:v0.9.0", f"git:{v080_commit[:12]}"]

    wf = _evaluate(e2e_loop, month, labels)
    e2e_loop.argo.require_success(wf)
    pinned = json.loads(next(o for o in wf.node_outputs("pin") if o.get("resolutions"))["resolutions"])
    by_label = {r["label"]: r for r in pinned}
    assert by_label["git:main"]["git_commit"] == main_commit
    assert by_label[f"git:{v080_commit[:12]}"]["git_commit"] == v080_commit
    assert by_label[NEW_VERSION]["wheel_sha256"] and by_label[NEW_VERSION]["profile"] == "runtime"
    built = {b.image.rsplit(":", 1)[1] for b in image_builds(wf)}
    # This run's 0.9.1 and main exist nowhere else; every pinned image is in the registry now.
    assert {by_label[NEW_VERSION]["image_tag"], by_label["git:main"]["image_tag"]} <= built
    new_this_run = {by_label[NEW_VERSION]["library_version"], by_label["git:main"]["library_version"]}
    for resolution in pinned:
        assert resolution["pinned_image"] == f"{resolution['image'].rsplit(':', 1)[0]}@{resolution['image_digest']}"
        records = _records(e2e_loop, month, resolution["library_version"])
        assert records, f"no evaluation of {resolution['library_version']} on {month}"
        digests = {str(r["image_digest"]) for r in records}
        if resolution["library_version"] in new_this_run:
            assert digests == {resolution["image_digest"]}
        else:
            # An evaluation that existed (the demo's, or a run's on an older runner context) is reused as
            # published, and names the image that made it.
            assert len(digests) == 1 and next(iter(digests)).startswith("sha256:"), digests
    evaluated = {
        p["value"] for n in wf.pods("evaluate-version") for p in n["inputs"]["parameters"] if p["name"] == "image"
    }
    assert all("@sha256:" in image for image in evaluated), evaluated

    again = _evaluate(e2e_loop, month, labels)
    e2e_loop.argo.require_success(again)
    assert not again.pods("build-runner-image"), "a second submit of the same labels must build nothing"
    print(f"new-version e2e: {time.monotonic() - started:.0f}s; built {sorted(built)}")


def test_a_label_that_names_nothing_fails_in_resolve_with_exit_2(
    e2e_loop: Loop, e2e_reviewed_months: list[str]
) -> None:
    wf = _evaluate(e2e_loop, e2e_reviewed_months[0], ["0.0.404", "git:no-such-branch"])
    assert wf.phase == "Failed"
    resolve = [n for n in wf.pods("resolve-versions")]
    assert resolve and all(n["phase"] == "Failed" for n in resolve)
    assert any("exit code 2" in str(n.get("message", "")) for n in resolve), [n.get("message") for n in resolve]
    assert not wf.pods("build-runner-image")


def test_an_image_two_workflows_need_at_once_is_built_once_and_cold_builds_install_the_same_set(
    e2e_loop: Loop, e2e_reviewed_months: list[str], tmp_path: Path
) -> None:
    """The build step's mutex, and reproducible installs.

    Two cold builds (BuildKit's cache emptied before each) of two library versions on one build context
    install the same locked package set, the library's own line aside.
    """
    month = e2e_reviewed_months[0]
    shared, other = f"0.9.2.post{RUN}", f"0.9.3.post{RUN}"
    cluster.load_package_index([_wheel_of_a_new_version(tmp_path, shared), _wheel_of_a_new_version(tmp_path, other)])

    # Evaluate compares two versions at least: 0.9.0, whose image and evaluation exist, is the second.
    _prune_build_cache()
    pair = _evaluate_at_once(e2e_loop, month, [shared, "0.9.0"], copies=2)
    for wf in pair:
        e2e_loop.argo.require_success(wf)
    builds = [b for wf in pair for b in image_builds(wf) if f":{shared}-" in b.image]
    built = [b for b in builds if b.built]
    assert len(built) == 1, f"{shared} was built {len(built)} times by two workflows: {builds}"
    (first,) = built
    digests = {r["image_digest"] for r in _records(e2e_loop, month, shared)}
    assert digests == {first.digest}, (digests, first)

    _prune_build_cache()
    (single,) = _evaluate_at_once(e2e_loop, month, [other, "0.9.0"], copies=1)
    e2e_loop.argo.require_success(single)
    (second,) = [b for b in image_builds(single) if f":{other}-" in b.image]
    assert second.built
    assert _without_the_library(first.installed) == _without_the_library(second.installed)
    assert f"battery-lib=={other}" in second.installed.splitlines()
    waited = [b for b in builds if not b.built]
    print(
        f"cold in-cluster builds: {shared} {first.seconds:.0f}s, {other} {second.seconds:.0f}s; "
        f"installed sets equal ({len(_without_the_library(first.installed))} packages besides the library); "
        f"the second workflow {'waited on the mutex' if waited else 'found the image at resolve'}"
    )

"""The gated rollout's rules: which decision binds a version, and the image it judged."""

from __future__ import annotations

import pytest

from eval_runner.errors import ConfigError
from eval_runner.fleet.gating import check_rollout, clean_text
from eval_runner.fleet.models import GateBinding
from tests.fakes import MemoryObjectStore
from tests.fixtures.decisions import digest, gate_decision, store_decision

TAG = "localhost:5001/fleet-eval/runner:0.9.0-runner-0.1.0-abcdef012345"
PULL = "localhost:5001/fleet-eval/runner"
JUDGED = digest("0.9.0")


@pytest.fixture
def store() -> MemoryObjectStore:
    store = MemoryObjectStore()
    store_decision(store, gate_decision("release-0-9-0", "0.9.0"))
    store_decision(store, gate_decision("release-0-10-0", "0.10.0", verdict="refuse"))
    return store


def test_a_pass_decision_of_the_version_binds_it_with_the_judged_image(store: MemoryObjectStore) -> None:
    gate = check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}")
    assert gate.binding == GateBinding(
        release_id="release-0-9-0",
        verdict="pass",
        library_version="0.9.0",
        candidate_image=JUDGED,
        image=f"{PULL}@{JUDGED}",
    )
    assert gate.override_reason is None and not gate.would_bind


def test_a_named_release_id_binds(store: MemoryObjectStore) -> None:
    gate = check_rollout(
        store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}", release_id="release-0-9-0"
    )
    assert gate.binding is not None and gate.binding.release_id == "release-0-9-0"
    assert gate.override_reason is None


def test_an_override_given_anyway_is_what_is_recorded(store: MemoryObjectStore) -> None:
    # The plan depends on the arguments only, so a retry writes the same plan whatever decisions appeared.
    gate = check_rollout(
        store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}", override_reason="just in case"
    )
    assert gate.binding is None and gate.override_reason == "just in case" and gate.would_bind


def test_no_pass_decision_is_refused_naming_the_version_and_what_to_do() -> None:
    store = MemoryObjectStore()
    store_decision(store, gate_decision("release-0-9-0", "0.9.0", verdict="hold"))
    with pytest.raises(ConfigError, match=r"0\.9\.0 has no pass decision.*release workflow.*--gate-override-reason"):
        check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}")


def test_an_override_reason_lets_an_ungated_version_go_and_is_recorded_stripped() -> None:
    gate = check_rollout(
        MemoryObjectStore(), library_version="0.9.0", image=TAG, pinned_image=None, override_reason="  e2e: chaos  "
    )
    assert gate.binding is None and gate.override_reason == "e2e: chaos" and not gate.would_bind


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_override_reason_is_no_override(blank: str | None) -> None:
    assert clean_text(blank) is None
    with pytest.raises(ConfigError, match="no pass decision"):
        check_rollout(MemoryObjectStore(), library_version="0.9.0", image=TAG, pinned_image=None, override_reason=blank)


def test_a_named_decision_that_is_not_a_pass_is_refused_even_with_an_override(store: MemoryObjectStore) -> None:
    with pytest.raises(ConfigError, match="'release-0-10-0' is a 'refuse', not a pass"):
        check_rollout(
            store,
            library_version="0.10.0",
            image=TAG,
            pinned_image=f"{PULL}@{digest('0.10.0')}",
            release_id="release-0-10-0",
            override_reason="ship it",
        )


def test_a_named_decision_of_another_version_is_refused(store: MemoryObjectStore) -> None:
    with pytest.raises(ConfigError, match=r"judged 0\.9\.0, but the version label resolved to 0\.9\.1"):
        check_rollout(
            store, library_version="0.9.1", image=TAG, pinned_image=f"{PULL}@{JUDGED}", release_id="release-0-9-0"
        )


def test_a_named_release_id_without_a_decision_is_refused(store: MemoryObjectStore) -> None:
    with pytest.raises(ConfigError, match=r"no gate decision at 'capacity/decisions/nope/decision\.json'"):
        check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}", release_id="nope")


@pytest.mark.parametrize("release_id", [None, "release-0-9-0"])
def test_a_rebuilt_image_is_refused_naming_both(store: MemoryObjectStore, release_id: str | None) -> None:
    rebuilt = f"{PULL}@{digest('rebuilt')}"
    with pytest.raises(ConfigError, match="rebuilt or removed") as error:
        check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=rebuilt, release_id=release_id)
    assert rebuilt in str(error.value) and JUDGED in str(error.value)


def test_a_missing_image_is_refused_naming_the_tag(store: MemoryObjectStore) -> None:
    with pytest.raises(ConfigError, match="not in the registry") as error:
        check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=None)
    assert TAG in str(error.value) and JUDGED in str(error.value)


def test_an_override_lets_a_rebuilt_image_go_without_claiming_the_decision(store: MemoryObjectStore) -> None:
    gate = check_rollout(
        store,
        library_version="0.9.0",
        image=TAG,
        pinned_image=f"{PULL}@{digest('rebuilt')}",
        override_reason="hotfix: base image CVE rebuild, re-gating tomorrow",
    )
    assert gate.binding is None
    assert gate.override_reason == "hotfix: base image CVE rebuild, re-gating tomorrow"


def test_any_pass_decision_that_judged_this_image_binds() -> None:
    store = MemoryObjectStore()
    store_decision(store, gate_decision("a-first", "0.9.0", image=digest("old build")))
    store_decision(store, gate_decision("b-second", "0.9.0", image=f"kind-registry:5000/fleet-eval/runner@{JUDGED}"))
    gate = check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}")
    assert gate.binding is not None and gate.binding.release_id == "b-second"


def test_a_decision_that_recorded_no_digest_cannot_bind() -> None:
    store = MemoryObjectStore()
    store_decision(store, gate_decision("local", "0.9.0", image="unknown"))
    with pytest.raises(ConfigError, match=r"local: unknown"):
        check_rollout(store, library_version="0.9.0", image=TAG, pinned_image=f"{PULL}@{JUDGED}")

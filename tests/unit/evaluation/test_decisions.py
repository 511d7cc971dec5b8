"""Finding gate decisions: by release id, the pass decisions of a version, and image digests."""

from __future__ import annotations

import pytest

from eval_runner.errors import DataError
from eval_runner.evaluation.decisions import image_digest_of, load_decision, pass_decisions
from eval_runner.keys import decision_key
from tests.fakes import MemoryObjectStore
from tests.fixtures.decisions import digest, gate_decision, store_decision

D = digest("0.9.0")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (D, D),
        (f"localhost:5001/fleet-eval/runner@{D}", D),
        (f"kind-registry:5000/fleet-eval/runner@{D.upper().replace('SHA256', 'sha256')}", D),
        ("localhost:5001/fleet-eval/runner:0.9.0-runner-0.1.0-abcdef012345", None),
        ("unknown", None),
        ("sha256:abc", None),
        ("", None),
        (None, None),
    ],
)
def test_image_digest_of_reads_the_digest_of_any_reference(reference: str | None, expected: str | None) -> None:
    assert image_digest_of(reference) == expected


def test_load_decision_by_release_id() -> None:
    store = MemoryObjectStore()
    decision = gate_decision("release-0-9-0", "0.9.0")
    store_decision(store, decision)
    assert load_decision(store, "release-0-9-0") == decision
    assert load_decision(store, "release-0-9-1") is None


def test_load_decision_refuses_a_malformed_file() -> None:
    store = MemoryObjectStore()
    store.put_bytes(decision_key("old"), b'{"passed": true}')
    with pytest.raises(DataError, match=r"old/decision\.json: not a valid gate decision"):
        load_decision(store, "old")


def test_pass_decisions_of_a_version_skip_other_versions_other_verdicts_and_unreadable_files() -> None:
    store = MemoryObjectStore()
    for decision in (
        gate_decision("r-b", "0.9.0"),
        gate_decision("r-a", "0.9.0", image=f"registry.local/runner@{digest('rebuilt')}"),
        gate_decision("r-refused", "0.9.0", verdict="refuse"),
        gate_decision("r-held", "0.9.0", verdict="hold"),
        gate_decision("r-other", "0.10.0"),
    ):
        store_decision(store, decision)
    store.put_bytes(decision_key("r-old"), b'{"passed": true}')
    store.put_bytes("capacity/decisions/r-b/notes.txt", b"not a decision")

    found = pass_decisions(store, "v0.9.0")

    assert [d.release_id for d in found.passes] == ["r-a", "r-b"]
    assert found.unreadable == (decision_key("r-old"),)
    assert pass_decisions(store, "0.8.0").passes == ()

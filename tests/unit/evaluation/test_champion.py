"""The champion of record: one generation per promotion, written only if the champion is still the one judged."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from click.testing import CliRunner

from eval_runner.cli import cli
from eval_runner.errors import DataError, ExitCode
from eval_runner.evaluation import champion, gate
from eval_runner.evaluation.champion import ChampionMovedError, ChampionRecord
from eval_runner.evaluation.decision import GateDecision
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import champion_key, decision_key
from eval_runner.storage import ObjectInfo
from tests.fakes import FakeRuntime, FakeTracker, MemoryObjectStore
from tests.fixtures.evaluation import seed_champion
from tests.fixtures.gate_world import gate_params

MODEL = "battery-lib"
World = tuple[MemoryObjectStore, FakeTracker]


def _decide(world: World, candidate: str, baseline: str, release_id: str, *, promote: bool = False) -> GateDecision:
    store, tracker = world
    params = dataclasses.replace(gate_params(candidate, baseline=baseline, promote=promote), release_id=release_id)
    return gate.run(params, store=store, tracker=tracker).decision


def _release_ids(store: MemoryObjectStore) -> list[str]:
    return [record.release_id for record in champion.history(store, MODEL)]


def test_the_first_promotion_is_generation_1_and_each_next_one_chains_onto_it(gate_world: World) -> None:
    store, _tracker = gate_world
    first = champion.promote(store, _decide(gate_world, "0.9.0", "0.8.0", "first"))
    assert (first.generation, first.library_version, first.previous_sha256) == (1, "0.9.0", None)
    assert first.decision_sha256 == sha256_bytes(store.get_bytes(decision_key("first")))
    stored = GateDecision.from_json_bytes(store.get_bytes(decision_key("first")), name="first")
    assert first.image_digest == stored.candidate_image
    second = champion.promote(store, _decide(gate_world, "0.9.0", "0.8.0", "again"))  # decided on generation 1
    assert second.generation == 2
    assert second.previous_sha256 == sha256_bytes(store.get_bytes(champion_key(MODEL, 1)))
    assert champion.current(store, MODEL) == second and _release_ids(store) == ["first", "again"]


def test_of_two_passes_decided_against_one_generation_only_the_first_promotes(gate_world: World) -> None:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    early = _decide(gate_world, "0.9.0", "champion", "early")
    late = _decide(gate_world, "0.9.0", "0.8.0", "late")
    assert early.promotion.replaces_generation == late.promotion.replaces_generation == 1

    assert champion.promote(store, early).generation == 2
    with pytest.raises(ChampionMovedError) as refused:
        champion.promote(store, late)

    assert refused.value.exit_code == ExitCode.DATA
    assert str(refused.value).startswith(
        f"{champion_key(MODEL, 2)}: the champion moved while late was decided; generation 2 is 0.9.0 (decision early)"
    )
    assert _release_ids(store) == ["seed-0.8.0", "early"]


def test_a_retried_gate_decided_before_another_promotion_exits_3_and_promotes_nothing(gate_world: World) -> None:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    late = dataclasses.replace(gate_params("0.9.0", baseline="0.8.0", promote=False), release_id="late")
    gate.run(late, store=store, tracker=tracker)  # decided while generation 1 is the champion
    _decide(gate_world, "0.9.0", "champion", "early", promote=True)
    with pytest.raises(ChampionMovedError, match="gate it again against the new champion"):
        gate.run(dataclasses.replace(late, promote=True), store=store, tracker=tracker)
    assert _release_ids(store) == ["seed-0.8.0", "early"]


def test_a_promotion_whose_conditional_write_loses_names_the_winner(gate_world: World) -> None:
    """The existence check passes, then another gate's record lands before ours: the write decides."""
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    ours = _decide(gate_world, "0.9.0", "champion", "ours")
    theirs = ChampionRecord.from_json_bytes(store.get_bytes(champion_key(MODEL, 1)), name="seed").model_copy(
        update={"generation": 2, "release_id": "theirs", "previous_sha256": "1" * 64}
    )

    class Racing(MemoryObjectStore):
        def head(self, key: str) -> ObjectInfo | None:
            if key == champion_key(MODEL, 2) and key not in self.objects:
                self.objects[key] = theirs.to_json_bytes()  # lands between our check and our write
                return None
            return super().head(key)

    racing = Racing()
    racing.objects = dict(store.objects)
    with pytest.raises(ChampionMovedError, match=r"generation 2 is 0\.8\.0 \(decision theirs\)"):
        champion.promote(racing, ours)
    assert racing.get_bytes(champion_key(MODEL, 2)) == theirs.to_json_bytes()


def test_a_retried_promotion_returns_its_first_record_and_writes_nothing(gate_world: World) -> None:
    store, _tracker = gate_world
    decision = _decide(gate_world, "0.9.0", "0.8.0", "once")
    first = champion.promote(store, decision)
    writes = len(store.writes)
    assert champion.promote(store, decision) == first
    assert len(store.writes) == writes


def test_a_decision_from_before_champion_records_replaces_whatever_is_current(gate_world: World) -> None:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    made = json.loads(_decide(gate_world, "0.9.0", "0.8.0", "made").to_json_bytes())
    del made["promotion"]["replaces_generation"]  # what a gate of an earlier eval_runner wrote
    made["release_id"] = "legacy"
    store.put_bytes(decision_key("legacy"), json.dumps(made).encode())
    legacy = GateDecision.from_json_bytes(store.get_bytes(decision_key("legacy")), name="legacy")
    assert legacy.promotion.replaces_generation is None

    promoted = champion.promote(store, legacy)
    assert promoted.generation == 2 and champion.promote(store, legacy) == promoted
    champion.promote(store, _decide(gate_world, "0.9.0", "0.8.0", "later"))
    assert champion.promote(store, legacy) == promoted  # a decision promotes once, even when rerun later
    assert _release_ids(store) == ["seed-0.8.0", "legacy", "later"]


def test_a_refusal_promotes_nothing(gate_world: World) -> None:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.9.0")
    refused = _decide(gate_world, "0.10.0", "champion", "refused")
    assert refused.verdict == "refuse"
    with pytest.raises(DataError, match="refused is a refuse, not a pass"):
        champion.promote(store, refused)
    assert _release_ids(store) == ["seed-0.9.0"]


def test_an_altered_history_is_refused_not_judged_against(gate_world: World) -> None:
    store, tracker = gate_world
    champion.promote(store, _decide(gate_world, "0.9.0", "0.8.0", "first"))
    forged = champion.current(store, MODEL).model_copy(  # type: ignore[union-attr]
        update={"generation": 2, "library_version": "0.6.0", "release_id": "forged", "previous_sha256": "2" * 64}
    )
    store.put_bytes(champion_key(MODEL, 2), forged.to_json_bytes())
    with pytest.raises(DataError, match="does not chain onto generation 1"):
        champion.current(store, MODEL)
    with pytest.raises(DataError, match="does not chain onto generation 1"):
        gate.run(gate_params("0.10.0"), store=store, tracker=tracker)


def test_every_gate_puts_an_alias_moved_by_hand_back_to_the_record(gate_world: World) -> None:
    store, tracker = gate_world
    _decide(gate_world, "0.9.0", "0.8.0", "first", promote=True)
    assert tracker.alias_version(MODEL, "champion").library_version == "0.9.0"  # type: ignore[union-attr]
    tracker.promote(MODEL, library_version="0.8.0", run_id="by-hand", alias="champion")

    assert _decide(gate_world, "0.10.0", "champion", "next").inputs.baseline.library_version == "0.9.0"
    assert tracker.alias_version(MODEL, "champion").library_version == "0.9.0"  # type: ignore[union-attr]
    assert not gate.mirror_alias(store, tracker, model=MODEL)  # in step now: nothing to move


def test_champion_show_prints_the_record_and_its_history(gate_world: World) -> None:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    champion.promote(store, _decide(gate_world, "0.9.0", "champion", "second"))

    def show(*args: str) -> Any:
        result = CliRunner().invoke(cli, ["champion", "show", *args], obj=FakeRuntime(tracker, store))
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert show()["library_version"] == "0.9.0"
    assert [r["generation"] for r in show("--history")] == [1, 2]
    empty = CliRunner().invoke(cli, ["champion", "show"], obj=FakeRuntime(tracker, MemoryObjectStore()))
    assert empty.exit_code != 0 and "has no champion of record yet" in str(empty.exception)

"""Two promotions decided against one champion, run at once against the real S3 server: exactly one wins."""

from __future__ import annotations

import dataclasses
import threading

from eval_runner.evaluation import champion, gate
from eval_runner.evaluation.champion import ChampionMovedError, ChampionRecord
from eval_runner.evaluation.decision import GateDecision
from eval_runner.keys import champion_key, decision_key
from eval_runner.storage import ContentConflictError, S3ObjectStore
from tests.fakes import FakeTracker, MemoryObjectStore
from tests.fixtures.evaluation import seed_champion
from tests.fixtures.gate_world import gate_params

ROUNDS = 20


def _pass_against_generation_1(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> GateDecision:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    params = dataclasses.replace(gate_params("0.9.0", promote=False), release_id="template")
    decision = gate.run(params, store=store, tracker=tracker).decision
    assert decision.verdict == "pass" and decision.promotion.replaces_generation == 1
    return decision


def _publish(store: S3ObjectStore, template: GateDecision, model: str, release_id: str) -> GateDecision:
    """The template decision as another release of ``model`` would have written it."""
    decision = template.model_copy(
        update={"release_id": release_id, "promotion": template.promotion.model_copy(update={"model": model})}
    )
    store.put_bytes(decision_key(release_id), decision.to_json_bytes())
    return decision


def _race(store: S3ObjectStore, decisions: list[GateDecision]) -> dict[str, ChampionRecord | Exception]:
    """Promote every decision at once, one thread each; what each promotion returned or raised."""
    start = threading.Barrier(len(decisions))
    outcomes: dict[str, ChampionRecord | Exception] = {}

    def promote(decision: GateDecision) -> None:
        start.wait()
        try:
            outcomes[decision.release_id] = champion.promote(store, decision)
        except Exception as error:  # recorded, asserted on by the caller
            outcomes[decision.release_id] = error

    threads = [threading.Thread(target=promote, args=(decision,)) for decision in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_of_two_concurrent_promotions_exactly_one_writes_the_next_generation(
    object_store: S3ObjectStore, gate_world: tuple[MemoryObjectStore, FakeTracker]
) -> None:
    template = _pass_against_generation_1(gate_world)
    seed = ChampionRecord.from_json_bytes(gate_world[0].get_bytes(champion_key("battery-lib", 1)), name="seed")
    decided_by_the_write = 0
    for round_ in range(ROUNDS):
        model = f"race-{round_}"
        object_store.put_bytes(champion_key(model, 1), seed.model_copy(update={"model": model}).to_json_bytes())
        decisions = [_publish(object_store, template, model, f"{model}-{side}") for side in ("a", "b")]
        outcomes = _race(object_store, decisions)

        won = [o for o in outcomes.values() if isinstance(o, ChampionRecord)]
        lost = [o for o in outcomes.values() if not isinstance(o, ChampionRecord)]
        assert len(won) == 1 and len(lost) == 1, (round_, outcomes)
        assert isinstance(lost[0], ChampionMovedError), lost[0]
        assert f"(decision {won[0].release_id})" in str(lost[0])
        assert [r.release_id for r in champion.history(object_store, model)] == ["seed-0.8.0", won[0].release_id]
        decided_by_the_write += isinstance(lost[0].__context__, ContentConflictError)
    # How often both passed the existence check and the server's If-None-Match decided (varies by run).
    print(f"{decided_by_the_write} of {ROUNDS} races were decided by the conditional write")

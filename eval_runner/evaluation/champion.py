"""The champion of record: a chain of immutable generations in S3, moved only by a conditional write.

MLflow's ``champion`` alias is what people look at, but setting it is not compare-and-set and anyone
who reaches MLflow can move it, so it cannot be what the gate judges against. The record is: each
promotion writes generation N+1 of ``capacity/champion/model=<model>/`` with ``If-None-Match`` (the
store's immutable put), naming the decision that allowed it and chained to generation N by its sha256.
Of two gates that read generation N and both pass, exactly one writes N+1; the other gets
ChampionMovedError (exit 3) and has to be gated again against the new champion. The alias only
mirrors the record, and every gate puts it back in step (see gate.py).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from eval_runner.errors import DataError
from eval_runner.evaluation.decision import GateDecision
from eval_runner.hashing import sha256_bytes
from eval_runner.keys import champion_generation_of_key, champion_key, champion_prefix, decision_key
from eval_runner.storage import ContentConflictError, ObjectStore
from eval_runner.stored import StoredRecord

_SHA256 = r"^[0-9a-f]{64}$"


class ChampionRecord(StoredRecord):
    """One generation of the champion: the library version and build that won, and the decision that let it.

    Nothing in it depends on when or where it was written, so a retried promotion writes the same bytes
    and the store takes it as a no-op, while any other record for the same generation is refused.
    """

    record_type: ClassVar[str] = "champion record"

    kind: Literal["champion"] = "champion"
    model: str
    generation: int = Field(ge=1)
    library_version: str
    image_digest: str
    release_id: str
    decision_sha256: str = Field(pattern=_SHA256)
    # The sha256 of generation - 1's stored bytes (None for the first champion): the history is a chain.
    previous_sha256: str | None = Field(default=None, pattern=_SHA256)


class ChampionMovedError(DataError):
    """Another promotion wrote the generation this one was decided against: gate again against the new champion."""


def _generations(store: ObjectStore, model: str) -> list[int]:
    found = (champion_generation_of_key(model, key) for key in store.list(champion_prefix(model)))
    return sorted(g for g in found if g is not None)


def _parse(data: bytes, model: str, generation: int) -> ChampionRecord:
    key = champion_key(model, generation)
    record = ChampionRecord.from_json_bytes(data, name=key)
    if record.model != model or record.generation != generation:
        raise DataError(f"{key}: holds generation {record.generation} of {record.model!r}, not what its key says")
    return record


def _read(store: ObjectStore, model: str, generation: int) -> ChampionRecord:
    return _parse(store.get_bytes(champion_key(model, generation)), model, generation)


def _sha256_of(store: ObjectStore, key: str, what: str) -> str:
    # Of the bytes, not the HEAD's metadata: the writer sets that, and these hashes are the chain's proof.
    if not store.exists(key):
        raise DataError(f"{key} is missing: {what}")
    return sha256_bytes(store.get_bytes(key))


def _record_sha256(store: ObjectStore, model: str, generation: int) -> str:
    return _sha256_of(store, champion_key(model, generation), f"the champion history of {model!r} has a gap")


def _check_link(store: ObjectStore, record: ChampionRecord, previous_sha256: str | None = None) -> None:
    """Refuse a record that does not chain onto the generation before it (hashed here unless given)."""
    if record.generation == 1:
        return
    if previous_sha256 is None:
        previous_sha256 = _record_sha256(store, record.model, record.generation - 1)
    if record.previous_sha256 != previous_sha256:
        raise DataError(
            f"{champion_key(record.model, record.generation)}: does not chain onto generation "
            f"{record.generation - 1} (previous_sha256 differs from that record's stored sha256); "
            "the champion history was altered"
        )


def current(store: ObjectStore, model: str) -> ChampionRecord | None:
    """The newest generation, checked to chain onto the one before; None before the first promotion."""
    generations = _generations(store, model)
    if not generations:
        return None
    record = _read(store, model, generations[-1])
    _check_link(store, record)
    return record


def history(store: ObjectStore, model: str) -> list[ChampionRecord]:
    """Every generation, oldest first, each checked to chain onto the one before (each read once)."""
    records: list[ChampionRecord] = []
    previous_sha256: str | None = None
    for expected, generation in enumerate(_generations(store, model), start=1):
        if generation != expected:
            raise DataError(f"champion records of {model!r}: generation {expected} is missing")
        data = store.get_bytes(champion_key(model, generation))
        record = _parse(data, model, generation)
        _check_link(store, record, previous_sha256)
        records.append(record)
        previous_sha256 = sha256_bytes(data)
    return records


def promote(store: ObjectStore, decision: GateDecision) -> ChampionRecord:
    """Make the decision's candidate the next champion, if the champion is still the one it was decided against.

    Idempotent: a decision promotes at most once, and a retry returns the generation its first attempt
    wrote. A decision made before champion records existed names no generation; it replaces whatever
    is current, unless some generation already names it.
    """
    if decision.verdict != "pass":
        raise DataError(f"decision {decision.release_id} is a {decision.verdict}, not a pass; it promotes nothing")
    model = decision.promotion.model
    replaces = decision.promotion.replaces_generation
    if replaces is None:
        records = history(store, model)
        earlier = [r for r in records if r.release_id == decision.release_id]
        if earlier:
            return earlier[0]
        replaces = records[-1].generation if records else 0
    generation = replaces + 1
    key = champion_key(model, generation)
    if store.exists(key):
        return _ours_or_moved(_read(store, model, generation), decision)
    decision_sha256 = _sha256_of(store, decision_key(decision.release_id), "a promotion needs its published decision")
    record = ChampionRecord(
        model=model,
        generation=generation,
        library_version=decision.inputs.candidate.library_version,
        image_digest=decision.candidate_image,
        release_id=decision.release_id,
        decision_sha256=decision_sha256,
        previous_sha256=_record_sha256(store, model, replaces) if replaces else None,
    )
    try:
        store.put_bytes(key, record.to_json_bytes())
    except ContentConflictError:
        return _ours_or_moved(_read(store, model, generation), decision)
    return record


def _ours_or_moved(found: ChampionRecord, decision: GateDecision) -> ChampionRecord:
    if found.release_id == decision.release_id:
        return found
    raise ChampionMovedError(
        f"{champion_key(found.model, found.generation)}: the champion moved while {decision.release_id} was decided; "
        f"generation {found.generation} is {found.library_version} (decision {found.release_id}). "
        f"{decision.inputs.candidate.library_version} was not promoted: gate it again against the new champion "
        "(with another --release-id)"
    )

"""Finding stored gate decisions: by release id, or the pass decisions of one library version."""

from __future__ import annotations

import re
from dataclasses import dataclass

from eval_runner.errors import DataError
from eval_runner.evaluation.decision import GateDecision
from eval_runner.evaluation.inputs import normalise_version
from eval_runner.keys import DECISIONS_PREFIX, decision_key
from eval_runner.storage import ObjectStore

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def image_digest_of(reference: str | None) -> str | None:
    """The ``sha256:<64 hex>`` an image reference names, or None when it names no digest.

    Takes what the steps record: a bare digest (the registry's Docker-Content-Digest, as evaluate's pin
    step passes it to the evaluations), ``repository@sha256:...`` (what pods pull), or a tag (no digest).
    Only the digest is compared: pods pull through another host name than the one builds push to.
    """
    if not reference:
        return None
    _, at, digest = reference.rpartition("@")
    text = digest if at else reference
    return text.lower() if _DIGEST.fullmatch(text.lower()) else None


def load_decision(store: ObjectStore, release_id: str) -> GateDecision | None:
    """The decision of ``release_id``; None when there is none (a malformed one is a DataError)."""
    key = decision_key(release_id)
    if not store.exists(key):
        return None
    return GateDecision.from_json_bytes(store.get_bytes(key), name=key)


@dataclass(frozen=True)
class VersionDecisions:
    """The pass decisions whose candidate is one version, and the decision files that could not be read."""

    passes: tuple[GateDecision, ...]
    unreadable: tuple[str, ...]


def pass_decisions(store: ObjectStore, library_version: str) -> VersionDecisions:
    """Every pass decision whose candidate is ``library_version``, ordered by release id.

    A decision file that does not parse (one of an older gate, say) cannot say what it allows and is
    skipped; its key is returned so a refusal can mention it.
    """
    wanted = normalise_version(library_version)
    passes: list[GateDecision] = []
    unreadable: list[str] = []
    for key in store.list(DECISIONS_PREFIX):
        if not key.endswith("/decision.json"):
            continue
        try:
            decision = GateDecision.from_json_bytes(store.get_bytes(key), name=key)
        except DataError:
            unreadable.append(key)
            continue
        if decision.verdict == "pass" and decision.inputs.candidate.library_version == wanted:
            passes.append(decision)
    return VersionDecisions(tuple(sorted(passes, key=lambda d: d.release_id)), tuple(unreadable))

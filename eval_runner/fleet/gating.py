"""The gated rollout: which pass decision lets `fleet prepare` ship a version, and in which image.

The rules, checked after the version label resolved and before the snapshot reads a source:

- ``release_id`` given: that decision must exist, be a pass and have the resolved version as its
  candidate. These are not overridable: naming a decision and overriding it contradict each other.
- no ``release_id``: any pass decision whose candidate is the resolved version may bind the rollout.
  None at all is a ConfigError unless an override reason is given.
- the image: the digest the resolution found for the version's image tag in the registry must be the
  digest a binding decision recorded for its candidate. A different digest means the tag was pushed
  again since gating; no digest means the image is gone, not built yet, or the registry was not asked.
  A new runner context (eval_runner's code, the lock, the Dockerfile) gives every version a new tag,
  hence a new build: a version gated before it must be gated again. None of these is what was judged,
  so all refuse unless an override reason is given. The tag's digest is checked rather than the
  decision's digest pulled blindly because the tag is what names this version's build today: an old
  digest under a moved tag would ship something the current resolution no longer describes.

Digests are compared as ``sha256:<hex>``: evaluations record the bare registry digest, pods pull
``repository@digest`` through another registry address than builds push to.

An override reason, when given, is what the plan records, even if a decision would have bound the
rollout: the plan is then a function of the arguments alone, so a retried prepare writes the same
plan.json although a decision appeared meanwhile. The plan names exactly one of the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from eval_runner.errors import ConfigError
from eval_runner.evaluation.decision import GateDecision
from eval_runner.evaluation.decisions import image_digest_of, load_decision, pass_decisions
from eval_runner.fleet.models import GateBinding
from eval_runner.keys import DECISIONS_PREFIX, decision_key
from eval_runner.storage import ObjectStore

_WHAT_TO_DO = "run the release workflow for it, or pass --gate-override-reason"


@dataclass(frozen=True)
class RolloutGate:
    """What lets a rollout go: a binding decision, or an override reason (exactly one is set)."""

    binding: GateBinding | None
    override_reason: str | None
    would_bind: bool = False  # overridden although a pass decision judged this image


def clean_text(text: str | None) -> str | None:
    """Stripped text, None when empty (Argo passes an empty string for an argument not given)."""
    stripped = (text or "").strip()
    return stripped or None


def _named(store: ObjectStore, release_id: str, library_version: str) -> GateDecision:
    decision = load_decision(store, release_id)
    if decision is None:
        raise ConfigError(f"--release-id {release_id!r}: there is no gate decision at {decision_key(release_id)!r}")
    if decision.verdict != "pass":
        first = decision.reasons[0] if decision.reasons else "no reason recorded"
        raise ConfigError(
            f"gate decision {release_id!r} is a {decision.verdict!r}, not a pass ({first}); "
            f"{library_version} does not roll out under it"
        )
    judged = decision.inputs.candidate.library_version
    if judged != library_version:
        raise ConfigError(
            f"gate decision {release_id!r} judged {judged}, but the version label resolved to {library_version} "
            "(a moving label such as 'latest' or a Git branch resolved to another build)"
        )
    return decision


def check_rollout(
    store: ObjectStore,
    *,
    library_version: str,
    image: str,
    pinned_image: str | None,
    release_id: str | None = None,
    override_reason: str | None = None,
) -> RolloutGate:
    """Apply the rules above to the resolved version and its image; a ConfigError (exit 2) refuses.

    ``image`` is the resolution's tag reference (for messages), ``pinned_image`` its ``repository@digest``
    when the registry has it.
    """
    reason = clean_text(override_reason)
    release_id = clean_text(release_id)
    if release_id is not None:
        candidates: tuple[GateDecision, ...] = (_named(store, release_id, library_version),)
    else:
        found = pass_decisions(store, library_version)
        candidates = found.passes
        if not candidates:
            if reason is not None:
                return RolloutGate(None, reason)
            skipped = f" ({len(found.unreadable)} unreadable decision files skipped)" if found.unreadable else ""
            raise ConfigError(
                f"{library_version} has no pass decision under {DECISIONS_PREFIX!r}{skipped}: "
                f"it was never gated, or not passed; {_WHAT_TO_DO}"
            )
    digest = image_digest_of(pinned_image)
    for decision in candidates:
        if digest is not None and image_digest_of(decision.candidate_image) == digest:
            assert pinned_image is not None  # noqa: S101  # a digest was read from it
            binding = GateBinding(
                release_id=decision.release_id,
                verdict="pass",
                library_version=library_version,
                candidate_image=decision.candidate_image,
                image=pinned_image,
            )
            return RolloutGate(binding, None) if reason is None else RolloutGate(None, reason, would_bind=True)
    if reason is not None:
        return RolloutGate(None, reason)
    judged = ", ".join(f"{d.release_id}: {d.candidate_image}" for d in candidates)
    found_image = pinned_image or f"{image} (not in the registry, or the registry was not asked)"
    raise ConfigError(
        f"{library_version}: the image to roll out is {found_image}, but the pass decision judged another "
        f"image ({judged}); it was rebuilt or removed since gating: gate this build again, or pass "
        "--gate-override-reason"
    )

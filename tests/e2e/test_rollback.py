"""Configuration writes to the simulated devices, and fleet-rollback puts exactly those devices back.

Judged on the devices themselves, through the shard API: a configuration dry run reads every device's
current parameters and counts those that differ from their chemistry's target. Before the write some
differ; after `fleet-rollout apply=true` none do; after `fleet-rollback apply=true` the same devices
differ again. A second rollback resumes from the restore's journal: it tries no device (``tried`` 0),
succeeds with the same counts and leaves the devices as they are.
"""

from __future__ import annotations

import json
import time

import pytest

from scripts.demo.loop import Loop, merge_summary, rollback_summary
from tests.fixtures.e2e_loop import Fleet

pytestmark = pytest.mark.timeout(2400)

REASON = "e2e: configuration targets come from the chemistry; the library version is not what is tested"


def _counts(loop: Loop, *, apply: bool = False) -> dict[str, object]:
    wf = loop.rollout("0.8.0", "configuration", shards=2, batch_size=100, gate_override_reason=REASON, apply=apply)
    summary = merge_summary(wf)
    counts = summary["counts"]
    assert isinstance(counts, dict), summary
    return {**counts, "run_id": summary["run_id"]}


def test_a_configuration_write_is_rolled_back_to_exactly_the_devices_it_changed(
    e2e_loop: Loop, e2e_fleet: Fleet
) -> None:
    before = _counts(e2e_loop)
    differing = int(before.get("would_update", 0))  # type: ignore[call-overload]
    assert differing > 0, f"the simulated fleet has no device off its target to write: {before}"

    started = time.monotonic()
    written = _counts(e2e_loop, apply=True)
    # The figure beside test_configuration_faults' apply under faults (same fleet, shards and batch size).
    print(f"configuration apply without faults: {differing} devices written in {time.monotonic() - started:.1f} s")
    assert written.get("updated") == differing, written
    assert written.get("failures", 0) == 0, written
    assert _counts(e2e_loop).get("would_update", 0) == 0  # every device at its target now

    run_id = str(written["run_id"])
    dry = rollback_summary(e2e_loop.rollback(run_id, apply=False))
    assert dry == {"run_id": run_id, "mode": "dry-run", "would_restore": differing}, dry

    restored = rollback_summary(e2e_loop.rollback(run_id, apply=True))
    assert restored["devices"] == restored["tried"] == restored.get("updated") == differing, json.dumps(restored)
    after = _counts(e2e_loop)
    assert after.get("would_update") == differing, after  # the same number off target as before the write
    assert after.get("devices") == e2e_fleet.devices

    again = rollback_summary(e2e_loop.rollback(run_id, apply=True))
    assert again == {**restored, "tried": 0}, again  # every device journaled: none is written twice
    assert _counts(e2e_loop).get("would_update") == differing

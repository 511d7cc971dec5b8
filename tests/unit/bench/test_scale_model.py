"""The scale model behind bench/scale_plan.py: its arithmetic, and the plan's headline conclusions."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench import scale_plan
from bench._scale_model import (
    FIXED_STATUS_NODES,
    MIB,
    NODES_PER_SHARD,
    Assumptions,
    MeasuredCosts,
    MissingMeasurementError,
    best_shards,
    estimate,
    max_shards,
    node_sizes,
    run_counts,
    status_size,
)

MEASURED = Path(__file__).resolve().parents[3] / "bench" / "results" / "fleet_cluster.json"
TEN_MILLION = 10_000_000

# The shape bench/fleet_cluster.py writes, with round numbers.
RAW: dict[str, Any] = {
    "devices": 100_000,
    "shards": 4,
    "batch_size": 250,
    "cores": 2,
    "snapshot_s_both": 40.0,
    "cluster_wall_s": 50.0,
    "cluster_steps": {
        "fleet-prepare": {"span_s": 4.0, "starts_after_s": 0.0, "work_s_max": 1.0},
        "fleet-shard": {"span_s": 32.0, "starts_after_s": 7.0, "work_s_max": 26.0},
        "fleet-merge": {"span_s": 7.0, "starts_after_s": 41.0, "work_s_max": 3.0},
    },
}


def costs(**changes: Any) -> MeasuredCosts:
    return replace(MeasuredCosts.from_json(RAW, "raw"), **changes)


def sized() -> Assumptions:
    """Assumptions with the node sizes scale_plan.py computes."""
    raw, gz = node_sizes()
    return Assumptions(node_bytes=raw, node_gz_bytes=gz)


def test_the_committed_measurement_parses() -> None:
    # Older files lack batch_size and cores; the fallbacks fill them in.
    measured = MeasuredCosts.from_json(json.loads(MEASURED.read_text()), str(MEASURED), batch_size=250, cores=2)
    assert measured.devices == 100_000
    assert 0 < measured.device_core_s < 0.01


def test_a_missing_key_names_the_file_and_the_key() -> None:
    broken = copy.deepcopy(RAW)
    del broken["cluster_steps"]["fleet-merge"]["work_s_max"]
    with pytest.raises(MissingMeasurementError, match=r"results\.json: key 'cluster_steps\.fleet-merge\.work_s_max'"):
        MeasuredCosts.from_json(broken, "results.json")


def test_a_non_number_is_refused() -> None:
    broken = {**RAW, "devices": "many"}
    with pytest.raises(MissingMeasurementError, match="'devices' should be a number"):
        MeasuredCosts.from_json(broken, "results.json")


def test_recorded_batch_size_and_cores_win_over_fallbacks() -> None:
    got = MeasuredCosts.from_json(RAW, "raw", batch_size=1000, cores=64)
    assert (got.batch_size, got.cores) == (250, 2)
    bare = {k: v for k, v in RAW.items() if k not in ("batch_size", "cores")}
    with pytest.raises(MissingMeasurementError, match="'batch_size'"):
        MeasuredCosts.from_json(bare, "raw")


def test_cpu_per_device_accounts_for_shards_sharing_cores() -> None:
    # 400 batches over 4 shards: 100 per shard, 26 s each, on 2 cores (half a core per shard).
    assert costs().device_core_s == pytest.approx(26.0 / 100 * 0.5 / 250)
    assert costs(cores=4).device_core_s == pytest.approx(2 * costs().device_core_s)
    assert costs(cores=8).device_core_s == costs(cores=4).device_core_s  # never more than a core each


def test_overheads_come_from_spans_minus_work() -> None:
    c = costs()
    assert c.pod_overhead_s == pytest.approx(6.0)
    # 0 before prepare, 3 s prepare -> shards, 2 s shards -> merge, 2 s after the merge pod
    assert c.controller_s == pytest.approx(7.0)


def test_doubling_the_per_batch_cost_doubles_the_compute_term() -> None:
    a = Assumptions(shards=64)
    base = estimate(TEN_MILLION, 16, costs(), a)
    doubled = estimate(TEN_MILLION, 16, costs(shard_work_s=52.0), a)
    assert doubled.compute_s == pytest.approx(2 * base.compute_s)
    assert doubled.shard_phase_s > base.shard_phase_s
    assert doubled.snapshot_s == base.snapshot_s


def test_more_nodes_do_not_help_past_the_templates_parallelism() -> None:
    a = Assumptions(parallelism=16)
    walls = [estimate(TEN_MILLION, n, costs(), a).wall_s for n in (1, 4, 16, 64)]
    assert walls[0] > walls[1]
    assert walls[1] == walls[2] == walls[3]


def test_the_single_snapshot_pod_dominates_10m_today() -> None:
    e = estimate(TEN_MILLION, 64, costs(), Assumptions())
    assert e.snapshot_s > e.shard_phase_s + e.merge_s


def test_snapshot_and_merge_pods_divide_their_per_device_work() -> None:
    one = estimate(TEN_MILLION, 16, costs(), Assumptions())
    sixteen = estimate(TEN_MILLION, 16, costs(), Assumptions(snapshot_pods=16, merge_pods=16))
    prepare_overhead, merge_overhead = 3.0, 4.0
    assert sixteen.snapshot_s - prepare_overhead == pytest.approx((one.snapshot_s - prepare_overhead) / 16)
    assert sixteen.merge_s - merge_overhead == pytest.approx((one.merge_s - merge_overhead) / 16)


def test_snapshot_and_merge_pods_are_capped_by_the_clusters_cores() -> None:
    a = Assumptions(pods_per_node=8, snapshot_pods=16, merge_pods=16)
    one_node = estimate(TEN_MILLION, 1, costs(), a)
    eight_pods = estimate(TEN_MILLION, 1, costs(), replace(a, snapshot_pods=8, merge_pods=8))
    assert (one_node.snapshot_s, one_node.merge_s) == (eight_pods.snapshot_s, eight_pods.merge_s)


def test_a_live_source_rate_replaces_only_the_snapshot_term() -> None:
    measured = estimate(TEN_MILLION, 16, costs(), Assumptions())
    live = estimate(TEN_MILLION, 16, costs(), Assumptions(snapshot_devices_per_s=100.0))
    assert live.snapshot_s == pytest.approx(3.0 + TEN_MILLION / 100.0)
    assert (live.shard_phase_s, live.merge_s) == (measured.shard_phase_s, measured.merge_s)


def test_best_shards_balance_work_against_pod_creation() -> None:
    assert best_shards(compute_s=1000.0, slots=10_000, batches=10_000, pods_per_s=10.0) == 100
    assert best_shards(compute_s=1000.0, slots=16, batches=10_000, pods_per_s=10.0) == 16
    assert best_shards(compute_s=1000.0, slots=10_000, batches=40, pods_per_s=10.0) == 40
    # the chosen count beats its neighbours on the shard phase
    a = Assumptions(parallelism=100_000)
    chosen = estimate(TEN_MILLION, 1000, costs(), a)
    for other in (chosen.shards // 2, chosen.shards * 2):
        assert estimate(TEN_MILLION, 1000, costs(), replace(a, shards=other)).shard_phase_s > chosen.shard_phase_s


def test_pod_per_batch_status_exceeds_the_limit_at_10m_even_compressed() -> None:
    a = sized()
    batches = math.ceil(TEN_MILLION / a.batch_size)
    e = estimate(TEN_MILLION, 64, costs(), replace(a, shards=batches, parallelism=64 * a.pods_per_node))
    assert e.status_nodes == FIXED_STATUS_NODES + NODES_PER_SHARD * batches
    assert e.status_bytes > 100 * MIB
    assert e.status_gz_bytes > MIB  # so only node status offload would hold it


def test_sharded_status_fits_at_10m() -> None:
    e = estimate(TEN_MILLION, 64, costs(), replace(sized(), parallelism=512))
    assert e.status_bytes < MIB


def test_max_shards_is_where_the_status_stops_fitting() -> None:
    a = sized()
    for compressed in (False, True):
        limit = max_shards(a, compressed=compressed)
        index = 1 if compressed else 0
        fits = status_size(FIXED_STATUS_NODES + NODES_PER_SHARD * limit, a)[index]
        over = status_size(FIXED_STATUS_NODES + NODES_PER_SHARD * (limit + 1), a)[index]
        assert fits <= a.max_workflow_bytes < over
    assert max_shards(a, compressed=True) > 10 * max_shards(a, compressed=False)


def test_compression_of_representative_nodes_is_not_flattered_by_identical_nodes() -> None:
    raw, gz = node_sizes()
    assert 1000 < raw < 4000
    assert raw / 40 < gz < raw / 4


def test_run_counts_follow_the_key_layout() -> None:
    a = Assumptions(batch_size=250)
    r = run_counts(TEN_MILLION, a, shards=64)
    assert r.batches == 40_000
    assert r.objects == 4 * 40_000 + 5
    assert r.objects_apply == r.objects + 2 * TEN_MILLION
    assert r.puts == 4 * 40_000 + 5
    bigger = run_counts(TEN_MILLION, replace(a, batch_size=1000), shards=64)
    assert bigger.objects == 4 * 10_000 + 5
    assert bigger.lists_per_pod == r.lists_per_pod // 4


def test_peak_s3_rates_scale_with_pods_and_shrink_with_batch_size() -> None:
    a = Assumptions(parallelism=512, shards=512)
    small = estimate(TEN_MILLION, 64, costs(), a)
    big = estimate(TEN_MILLION, 64, costs(), replace(a, batch_size=1000))
    assert small.put_per_s > a.s3_put_per_s  # 512 pods on 250-device batches overrun one prefix
    assert big.put_per_s == pytest.approx(small.put_per_s / 4)
    assert big.put_per_s < a.s3_put_per_s


def test_the_script_prints_every_size_and_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert scale_plan.main(["--nodes", "1", "64"]) == 0
    out = capsys.readouterr().out
    assert "| 10M | 64 |" in out
    assert "| 100,000 | 1 |" in out
    assert "no: offload" in out  # the pod-per-batch contrast at 10M


def test_the_script_reads_a_measurement_anywhere_and_checks_its_status_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = tmp_path / "fleet_cluster.json"
    measured.write_text(json.dumps({**RAW, "cluster_status_nodes": 17, "cluster_workflow_bytes": 64 * 1024}))
    assert scale_plan.main(["--measured", str(measured), "--nodes", "4"]) == 0
    out = capsys.readouterr().out
    assert "| workflow object of the measured run | 64 KiB, 17 nodes (model: " in out
    assert f"({measured})" in out


def test_the_script_names_a_missing_measurement(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"nothing\.json: no measurement"):
        scale_plan.main(["--measured", str(tmp_path / "nothing.json")])
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"devices": 1}))
    with pytest.raises(SystemExit, match=r"partial\.json: key 'shards' is missing"):
        scale_plan.main(["--measured", str(partial)])

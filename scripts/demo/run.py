"""`make demo`: install the chart with the simulated fleet and run the whole loop on the kind cluster.

Steps: install (chart + demo sources, package index, UIs on host ports) -> dataset-build per month ->
the demo reviewer's review -> evaluate 0.6.0, 0.8.0, 0.9.0 (gate 0.9.0 against 0.8.0, promote) ->
release 0.10.0 (the gate must refuse it) -> fleet-rollout of the champion in every mode
(configuration as a dry run) -> where to look and a summary table. Usage: python -m scripts.demo.run --help
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from minio import Minio

from eval_runner.keys import Month
from scripts.demo import cluster
from scripts.demo.argo import ArgoServer, WorkflowFailed
from scripts.demo.library_versions import wheels
from scripts.demo.loop import ImageBuild, Loop, StepRecord

MODES = ("fleet", "fleet-q10-distributions", "configuration")
RELEASE_POLICY = "default"


def log(message: str) -> None:
    """One timestamped progress line."""
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def months_from(start: str, count: int) -> list[str]:
    """``count`` consecutive months (YYYY-MM) from ``start``."""
    Month.parse(start)  # validates
    year, month = (int(x) for x in start.split("-"))
    out = []
    for i in range(count):
        y, m = divmod(month - 1 + i, 12)
        out.append(f"{year + y}-{m + 1:02d}")
    return out


def install(args: argparse.Namespace, creds: cluster.Credentials, s3: Minio) -> None:
    """The chart with the demo sources, the package index filled, the UIs on host ports."""
    for bucket in (cluster.DATA_BUCKET, "argo-artifacts"):
        cluster.ensure_bucket(s3, bucket)
    values = cluster.helm_values(devices=args.devices, months=args.months, start=args.start, creds=creds)
    cluster.helm_install([*values, *cluster.pinned_image_values()])
    cluster.expose_node_ports()
    # The team's released versions on the private index; their runner images are built by the workflows.
    cluster.load_package_index(wheels())


# The fleet `make test` and `make bench` install when no demo fleet is installed: the smallest on which
# the default policy's gate of 0.9.0 over 0.6.0 passes with margin (~280 samples a month).
SMALL_FLEET_DEVICES = 600


def install_keeping_fleet(
    creds: cluster.Credentials, s3: Minio, *, devices: int, months: int = 2, start: str = "2026-03"
) -> tuple[int, list[str]]:
    """Install or upgrade the chart from this checkout; an installed demo fleet keeps its size and months.

    The loop's S3 objects are immutable (a month's dataset is never rewritten with other content), so
    an existing install's fleet is kept; everything else is applied again (`helm upgrade`, the package
    index), so callers always run this checkout's WorkflowTemplates and an
    install interrupted half-way is completed. Returns (devices, months).
    """
    values = cluster.installed_demo_values() or {}
    devices = int(values.get("devices") or devices)
    count, start = int(values.get("months") or months), str(values.get("start") or start)
    install(argparse.Namespace(devices=devices, months=count, start=start), creds, s3)
    return devices, months_from(start, count)


def table(records: list[StepRecord]) -> str:
    """The summary table: one row per step."""
    head = ("step", "workflow", "phase", "time", "result")
    rows = [(r.step, r.workflow, r.phase, f"{r.seconds:.0f}s", r.result) for r in records]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True))

    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])


def builds_table(builds: list[ImageBuild]) -> str:
    """Which runner images the cluster built during the run (BuildKit, from the core image's context)."""
    built = [b for b in builds if b.built]
    if not built:
        return "runner images built in the cluster: none (every image existed already)"
    lines = ["runner images built in the cluster (BuildKit):"]
    lines += [f"  {b.image}  profile {b.profile}  {b.seconds:.0f}s  (workflow {b.workflow})" for b in built]
    waited = len(builds) - len(built)
    if waited:
        lines.append(f"  and {waited} build step(s) that found their image built by another workflow")
    return "\n".join(lines)


def where_to_look() -> str:
    """The UIs and endpoints on the host (ports mapped by kind-config.yaml)."""
    return "\n".join(
        [
            f"Argo UI (workflows, node summaries, plots, live shard progress): {cluster.ARGO_URL}"
            "  (self-signed TLS; log in with the token of:",
            f"    kubectl --context {cluster.KUBE_CONTEXT} -n argo get secret fleet-eval-client.service-account-token"
            " -o jsonpath='{.data.token}' | base64 -d",
            "  pasted as 'Bearer <token>')",
            f"MLflow UI (runs per month and version, comparison runs, champion alias): "
            f"http://127.0.0.1:{cluster.MLFLOW_NODE_PORT}",
            f"Review UI (approve/reject samples per month): http://127.0.0.1:{cluster.REVIEW_NODE_PORT}",
            f"S3 (versitygw; keys in secret argo/s3-credentials): http://{cluster.S3_HOST}"
            f"  bucket {cluster.DATA_BUCKET}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 when every step did what it should."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=2000, help="simulated fleet size")
    parser.add_argument("--months", type=int, default=3, help="months with capacity tests")
    parser.add_argument("--start", default="2026-03", help="first month (YYYY-MM)")
    parser.add_argument("--shards", type=int, default=4, help="shard pods per fleet rollout")
    parser.add_argument("--skip-install", action="store_true", help="the chart is installed already")
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    creds = cluster.credentials()
    s3 = cluster.s3_client(creds)
    argo = ArgoServer(cluster.ARGO_URL, creds.argo_token)
    loop = Loop(argo=argo, s3=s3, creds=creds)
    months = months_from(args.start, args.months)
    installed = cluster.installed_demo_values()
    wanted = {"devices": args.devices, "months": args.months, "start": args.start}
    if installed and not args.skip_install and any(installed.get(k) != v for k, v in wanted.items()):
        # Datasets are immutable per month: another fleet would give other content under the same keys.
        log(
            f"the chart on this cluster serves another simulated fleet ({installed.get('devices')} devices, "
            f"{installed.get('months')} months from {installed.get('start')}; `make test` installs 600 x 2), and "
            "the loop's datasets are immutable per month. Run `make cluster-down` first (the cluster is "
            f"recreated in about 1.5 minutes), or pass DEMO_ARGS='--devices {installed.get('devices')} "
            f"--months {installed.get('months')} --start {installed.get('start')}'."
        )
        return 2
    try:
        if not args.skip_install:
            log(f"installing the chart: {args.devices} simulated devices, months {', '.join(months)}")
            t = time.monotonic()
            install(args, creds, s3)
            log(f"chart installed, sources loaded, package index filled in {time.monotonic() - t:.0f}s")
        log("the UIs, to watch the loop as it runs:")
        print(where_to_look(), flush=True)

        log(f"dataset-build for {', '.join(months)} (in parallel), then the demo reviewer's review")
        with ThreadPoolExecutor(len(months)) as pool:
            names = dict(zip(months, pool.map(loop.build_dataset, months), strict=True))
        for month, name in names.items():
            review = loop.review(month)
            log(
                f"{month}: the demo reviewer approves the extractor's suggestions: "
                f"{review['approved']} approved, {review['rejected']} rejected; resuming {name}"
            )
            loop.resume_and_validate(name, month, review)

        log("evaluate 0.6.0, 0.8.0 and 0.9.0 on every month; gate 0.9.0 against 0.8.0 and promote on a pass")
        wf = loop.evaluate(months, ["0.9.0", "0.6.0", "0.8.0"], baseline="0.8.0", promote=True)
        gate = loop.gate_outputs(wf)
        if gate.get("passed") != "true":
            raise WorkflowFailed(f"workflow {wf.name}: the gate refused 0.9.0 ({gate.get('reasons')})")
        champion, champion_decision = "0.9.0", str(gate.get("release_id", ""))
        log(f"0.9.0 is the champion (decision {champion_decision})")

        # The default policy puts the burden of proof on the candidate: 0.10.0 must show rev C is not worse.
        log("release 0.10.0 (GitOps entry, rollout on, default policy): the gate must refuse it")
        try:
            wf = loop.release("0.10.0", months, policy=RELEASE_POLICY)
        except WorkflowFailed as error:
            if "compare-versions" not in str(error):
                raise
            # Known workflows bug: release evaluates the candidate alone and compare needs two versions.
            log(f"release template failed in its compare step ({error}); running its evaluate + gate directly:")
            log(f"evaluate [0.10.0, {champion}], gate 0.10.0 against the champion alias, promote on a pass")
            wf = loop.evaluate(months, ["0.10.0", champion], baseline="champion", promote=True, policy=RELEASE_POLICY)
        gate = loop.gate_outputs(wf)
        if gate.get("verdict") != "refuse":
            raise WorkflowFailed(f"workflow {wf.name}: the gate did not refuse 0.10.0 (verdict {gate.get('verdict')})")
        log(f"0.10.0 refused: {gate.get('reasons')}")

        log(
            f"fleet-rollout of the champion {champion} in modes {', '.join(MODES)} (configuration: dry run), "
            f"bound to its pass decision {champion_decision} and the image digest it judged"
        )
        failed = []
        for mode in MODES:
            try:
                loop.rollout(champion, mode, shards=args.shards, release_id=champion_decision)
            except WorkflowFailed as error:  # one mode failing does not hide the others' results
                log(f"FAILED: rollout {champion} {mode}: {error}")
                failed.append(mode)
    except (WorkflowFailed, TimeoutError, RuntimeError) as error:
        log(f"FAILED: {error}")
        if loop.records:
            print(table(loop.records))
        return 1
    print()
    print(where_to_look())
    print()
    print(table(loop.records))
    print()
    print(builds_table(loop.builds))
    print(f"pods that failed to start (StartError), retried by Argo: {len(loop.start_errors)}")
    for start_error in loop.start_errors:
        print(f"  {start_error}")
    log(f"the loop ran in {time.monotonic() - t0:.0f}s")
    if failed:
        log(f"FAILED: fleet-rollout in mode(s) {', '.join(failed)} (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

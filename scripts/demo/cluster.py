"""The kind cluster as the demo drives it: kubectl/helm, Secrets, the chart install, S3 and host ports."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from minio import Minio
from pydantic import SecretStr

from eval_runner.settings import S3Settings

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FLEET_EVAL_CACHE", "/var/cache/fleet-eval"))
BIN = CACHE / "bin"
NAMESPACE = "argo"
RELEASE = "fleet-eval"
CHART = REPO / "charts" / "fleet-eval"
KUBE_CONTEXT = os.environ.get("FLEET_EVAL_KUBE_CONTEXT", "kind-fleet-eval")
# Host ports kind-config.yaml maps to node ports.
ARGO_URL = os.environ.get("FLEET_EVAL_ARGO_SERVER", "https://127.0.0.1:32746")
S3_HOST = os.environ.get("FLEET_EVAL_S3_HOST", "127.0.0.1:32070")
MLFLOW_NODE_PORT = 32500
REVIEW_NODE_PORT = 32080
GIT_NODE_PORT = 32090
DATA_BUCKET = "fleet-eval"
REGISTRY = "localhost:5001"  # the cluster registry as nodes and the host name it (kind-registry:5000 inside)


def tool(name: str) -> str:
    """Path of a tool `make cluster` built into the machine cache (kubectl, helm, argo)."""
    found = sorted(BIN.glob(f"*/{name}"))
    if not found:
        raise FileNotFoundError(
            f"{name} not found under {BIN}; run `make cluster` first (it builds kubectl, helm, argo)"
        )
    return str(found[-1])


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """Run kubectl against the kind context; returns stdout, raises with stderr on failure."""
    cmd = [tool("kubectl"), "--context", KUBE_CONTEXT, *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def secret_value(name: str, key: str, namespace: str = NAMESPACE) -> str:
    """One key of a Secret, decoded."""
    data = json.loads(kubectl("-n", namespace, "get", "secret", name, "-o", "json"))["data"]
    return base64.b64decode(data[key]).decode()


@dataclass(frozen=True)
class Credentials:
    """What the host side needs: the argo-server token and the S3 root keys."""

    argo_token: str
    s3_access_key: str
    s3_secret_key: str


def credentials() -> Credentials:
    """Read the credentials `make cluster` created."""
    return Credentials(
        argo_token=secret_value("fleet-eval-client.service-account-token", "token"),
        s3_access_key=secret_value("s3-credentials", "accesskey"),
        s3_secret_key=secret_value("s3-credentials", "secretkey"),
    )


def s3_client(creds: Credentials) -> Minio:
    """The in-cluster versitygw through its host port."""
    return Minio(S3_HOST, access_key=creds.s3_access_key, secret_key=creds.s3_secret_key, secure=False)


def s3_settings(creds: Credentials, bucket: str) -> S3Settings:
    """eval_runner's S3 settings for the cluster's versitygw through its host port."""
    return S3Settings(
        endpoint=S3_HOST,
        access_key=SecretStr(creds.s3_access_key),
        secret_key=SecretStr(creds.s3_secret_key),
        bucket=bucket,
    )


def ensure_bucket(s3: Minio, bucket: str) -> None:
    """Create ``bucket`` unless it exists."""
    if not s3.bucket_exists(bucket):
        s3.make_bucket(bucket)


def helm_values(*, devices: int, months: int, start: str, creds: Credentials) -> list[str]:
    """`helm` arguments of the demo: ci/demo-values.yaml plus what the kind demo needs on top."""
    return [
        "-f",
        str(CHART / "ci" / "demo-values.yaml"),
        "--set",
        f"demo.devices={devices}",
        "--set",
        f"demo.months={months}",
        "--set-string",
        f"demo.start={start}",
        # The chart's Secret must hold keys versitygw knows: the cluster's root keys.
        "--set-string",
        f"secrets.s3.accessKey={creds.s3_access_key}",
        "--set-string",
        f"secrets.s3.secretKey={creds.s3_secret_key}",
        # The UIs are reached from the host through node ports (kube-proxy SNATs to the node's address),
        # which the chart's pod-only NetworkPolicies would drop; see docs/demo.md.
        # An empty shard token reaches eval_runner as "" and becomes the illegal header "Bearer " (the
        # demo shards ask for no token, so any value works).
        "--set-string",
        "secrets.shards.token=demo-shards-token",
        # The demo Git server on the host port kind-config.yaml maps (clone, push the GitOps values).
        "--set",
        f"demo.gitServer.nodePort={GIT_NODE_PORT}",
        # MLflow's UI and API on the host through its node port (see expose_node_ports).
        "--set-string",
        f"mlflow.allowedHosts[0]=127.0.0.1:{MLFLOW_NODE_PORT}",
        "--set-string",
        f"mlflow.allowedHosts[1]=localhost:{MLFLOW_NODE_PORT}",
        "--set",
        "networkPolicies.enabled=false",
        "--set",
        "s3.networkPolicy.enabled=false",
    ]


# The chart's images (their values paths), each pinned at install to the digest the registry holds for its tag.
CHART_IMAGES = ("images.core", "mlflow.image", "packageIndex.image", "demo.image", "demo.postgres.image",
                "demo.gitServer.image")  # fmt: skip
_MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])  # fmt: skip


def registry_digest(repository: str, tag: str) -> str:
    """The digest the cluster registry (localhost:5001, reached as 127.0.0.1:5001) holds for ``repository:tag``."""
    name = repository.removeprefix(f"{REGISTRY}/")
    if name == repository:
        raise ValueError(f"image {repository}:{tag} is not in the cluster registry {REGISTRY}")
    request = urllib.request.Request(f"http://127.0.0.1:5001/v2/{name}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": _MANIFEST_TYPES})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310  (http to the local registry)
            digest = str(answer.headers.get("Docker-Content-Digest", ""))
    except urllib.error.HTTPError as error:
        raise RuntimeError(
            f"the cluster registry has no {repository}:{tag} ({error.code}); run make demo-images"
        ) from error
    if not digest.startswith("sha256:"):
        raise RuntimeError(f"the cluster registry gave no digest for {repository}:{tag}")
    return digest


def pinned_image_values() -> list[str]:
    """`helm` arguments pinning each chart image to the digest its tag holds now.

    Tags are rebuilt in place (`make demo-images` pushes the same tag with new content), and a Deployment
    whose spec did not change is never restarted: without the digest a long-running pod (the shards, the
    review UI) kept running the image it started with after every rebuild.
    """
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    args: list[str] = []
    for path in CHART_IMAGES:
        image = defaults
        for key in path.split("."):
            image = image[key]
        args += ["--set-string", f"{path}.digest={registry_digest(image['repository'], str(image['tag']))}"]
    return args


def installed_demo_values() -> dict[str, Any] | None:
    """The `demo` values of the installed release (devices, months, start), or None when not installed.

    All computed values, not only the user-supplied ones: once Flux manages the release, the values file
    from Git is baked into the chart's defaults and the user-supplied values are only the Secret's.
    """
    done = subprocess.run(
        [tool("helm"), "--kube-context", KUBE_CONTEXT, "-n", NAMESPACE, "get", "values", RELEASE, "--all", "-ojson"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    demo = (json.loads(done.stdout or "{}") or {}).get("demo") or {}
    return demo if demo.get("enabled") else None


def flux_release() -> dict[str, Any] | None:
    """Flux's HelmRelease of the chart (argo/fleet-eval), or None (none applied, or no Flux on the cluster)."""
    done = subprocess.run(
        [tool("kubectl"), "--context", KUBE_CONTEXT, "-n", NAMESPACE, "get", "helmreleases.helm.toolkit.fluxcd.io",
         RELEASE, "--ignore-not-found", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        if "the server doesn't have a resource type" in done.stderr:
            return None
        raise RuntimeError(f"kubectl get helmrelease {NAMESPACE}/{RELEASE} failed: {done.stderr.strip()}")
    return dict(json.loads(done.stdout)) if done.stdout.strip() else None


def suspend_flux_release() -> bool:
    """Suspend Flux's HelmRelease of the chart if it is active; True if it was.

    A `helm upgrade` by hand under an active HelmRelease is undone by helm-controller at its next
    reconcile (Git's values win), so the two would fight; the GitOps handover resumes it.
    """
    found = flux_release()
    if found is None or found.get("spec", {}).get("suspend"):
        return False
    patch = json.dumps({"spec": {"suspend": True}})
    kubectl("-n", NAMESPACE, "patch", "helmreleases.helm.toolkit.fluxcd.io", RELEASE, "--type", "merge", "-p", patch)
    return True


def helm_install(values: list[str], *, timeout: str = "15m") -> None:
    """Install or upgrade the chart and wait for its Deployments, StatefulSets and Jobs.

    Flux's HelmRelease of the chart, if active, is suspended first (see suspend_flux_release).
    """
    if suspend_flux_release():
        print(
            f"helmrelease {NAMESPACE}/{RELEASE} suspended: this helm upgrade by hand would be undone by Flux "
            "(the GitOps handover resumes it)",
            flush=True,
        )
    cmd = [
        tool("helm"),
        "--kube-context",
        KUBE_CONTEXT,
        "upgrade",
        "--install",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        *values,
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        timeout,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pods = kubectl("-n", NAMESPACE, "get", "pods", "-l", f"app.kubernetes.io/instance={RELEASE}", check=False)
        raise RuntimeError(f"helm upgrade --install {RELEASE} failed: {done.stderr.strip()}\n{pods}")


def component_selector(component: str) -> dict[str, str]:
    """Selector labels of one of the chart's components (as the chart's helpers write them)."""
    return {
        "app.kubernetes.io/name": "fleet-eval",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": component,
    }


def expose_node_ports() -> None:
    """NodePort Services for the MLflow and review UIs on the host ports kind-config.yaml maps.

    The chart's Services are ClusterIP only; these extra Services belong to the demo, not the chart.
    """
    for component, port, node_port in (("mlflow", 5000, MLFLOW_NODE_PORT), ("review", 8501, REVIEW_NODE_PORT)):
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"fleet-eval-demo-{component}-ui", "namespace": NAMESPACE},
            "spec": {
                "type": "NodePort",
                "selector": component_selector(component),
                "ports": [{"name": "http", "port": port, "targetPort": "http", "nodePort": node_port}],
            },
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(service))


def pod_name(component: str) -> str:
    """Name of the running pod of one of the chart's components."""
    selector = ",".join(f"{k}={v}" for k, v in component_selector(component).items())
    out = kubectl("-n", NAMESPACE, "get", "pods", "-l", selector, "--field-selector=status.phase=Running", "-o", "json")
    items = json.loads(out)["items"]
    if not items:
        raise RuntimeError(f"no running pod of component {component!r} in namespace {NAMESPACE}")
    return str(items[0]["metadata"]["name"])


def load_package_index(wheels: list[Path]) -> None:
    """Copy battery-lib wheels into the chart's package index (its volume is /data/packages)."""
    pod = pod_name("package-index")
    for wheel in wheels:
        kubectl("-n", NAMESPACE, "cp", str(wheel), f"{pod}:/data/packages/{wheel.name}")


def wait_http(url: str, timeout: float = 120) -> None:
    """Wait until ``url`` answers at all (any HTTP status)."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=5, verify=False)  # noqa: S501  # self-signed in the kind cluster
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f}s") from None
            time.sleep(2)


def scale(kind_name: str, replicas: int, namespace: str) -> None:
    """Scale a Deployment or StatefulSet (``deployment/name``)."""
    kubectl("-n", namespace, "scale", kind_name, f"--replicas={replicas}")


def json_get(*args: str) -> dict[str, Any]:
    """`kubectl ... -o json`, parsed."""
    return dict(json.loads(kubectl(*args, "-o", "json")))

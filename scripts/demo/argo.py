"""argo-server's REST API as the demo and the e2e tests use it: submit from a template, wait, resume, explain."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import httpx

FINISHED = ("Succeeded", "Failed", "Error")


class WorkflowFailed(RuntimeError):  # noqa: N818  # reads as what happened: "workflow failed"
    """A workflow ended other than Succeeded; the message names it and its failed nodes."""


@dataclass
class Workflow:
    """The parts of a Workflow object the loop reads."""

    raw: dict[str, Any]

    @property
    def name(self) -> str:
        """metadata.name."""
        return str(self.raw["metadata"]["name"])

    @property
    def status(self) -> dict[str, Any]:
        """The status object (empty before the controller saw it)."""
        return dict(self.raw.get("status") or {})

    @property
    def phase(self) -> str:
        """Workflow phase; Pending before the controller set one."""
        return str(self.status.get("phase") or "Pending")

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """status.nodes by node id."""
        return dict(self.status.get("nodes") or {})

    def duration_s(self) -> float | None:
        """Wall time from start to finish (None while running)."""
        started, finished = self.status.get("startedAt"), self.status.get("finishedAt")
        if not started or not finished:
            return None
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return time.mktime(time.strptime(finished, fmt)) - time.mktime(time.strptime(started, fmt))

    def failed_nodes(self) -> list[str]:
        """`display name (template): message` of every leaf node (or DAG with a message) that failed."""
        out = []
        for node in self.nodes.values():
            leaf = node.get("type") not in ("DAG", "Steps", "StepGroup", "TaskGroup")
            if node.get("phase") in ("Failed", "Error") and (leaf or node.get("message")):
                out.append(f"{node.get('displayName')} ({node.get('templateName')}): {node.get('message', '')}")
        return sorted(set(out))

    def suspended_node(self) -> str | None:
        """Display name of a Suspend node that is waiting (Running), if any."""
        for node in self.nodes.values():
            if node.get("type") == "Suspend" and node.get("phase") == "Running":
                return str(node.get("displayName"))
        return None

    def node_outputs(self, display_prefix: str) -> list[dict[str, str]]:
        """Output parameters of the succeeded Pod nodes whose display name starts with ``display_prefix``."""
        found = []
        for node in self.nodes.values():
            if (
                node.get("type") == "Pod"
                and node.get("phase") == "Succeeded"
                and str(node.get("displayName", "")).startswith(display_prefix)
            ):
                params = (node.get("outputs") or {}).get("parameters") or []
                found.append({p["name"]: p.get("value", "") for p in params})
        return found

    def failed_pods(self) -> list[tuple[str, str]]:
        """``(display name, pod name)`` of every Pod node that failed.

        Pod names are Argo's v2 names: ``<workflow>-<template>-<the hash that ends the node id>``.
        """
        found = []
        for node_id, node in self.nodes.items():
            if node.get("type") == "Pod" and node.get("phase") in ("Failed", "Error"):
                pod = f"{self.name}-{node.get('templateName')}-{node_id.rsplit('-', 1)[-1]}"
                found.append((str(node.get("displayName")), pod))
        return sorted(found)

    def pods(self, template_prefix: str = "") -> list[dict[str, Any]]:
        """Pod nodes (optionally of templates starting with ``template_prefix``)."""
        return [
            n
            for n in self.nodes.values()
            if n.get("type") == "Pod" and str(n.get("templateName", "")).startswith(template_prefix)
        ]


@dataclass
class ArgoServer:
    """A client of argo-server (client auth mode: a ServiceAccount bearer token; self-signed TLS)."""

    url: str
    token: str
    namespace: str = "argo"
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        warnings.filterwarnings("ignore", message="Unverified HTTPS request")
        self._client = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=False,  # noqa: S501  # argo-server's certificate is self-signed in the kind cluster
            timeout=60,
        )

    def close(self) -> None:
        """Close the connection pool (pytest turns an unclosed socket into an error)."""
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in range(6):
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError:
                if attempt == 5:
                    raise
                time.sleep(2 * (attempt + 1))
                continue
            if response.status_code >= 500 and attempt < 5:
                time.sleep(2 * (attempt + 1))
                continue
            if response.is_error:
                raise RuntimeError(f"argo-server {method} {path}: HTTP {response.status_code}: {response.text[:500]}")
            return dict(response.json())
        raise AssertionError("unreachable")

    def submit(self, template: str, parameters: dict[str, str], *, labels: dict[str, str] | None = None) -> str:
        """Submit a Workflow from a WorkflowTemplate; returns its name."""
        options: dict[str, Any] = {
            "generateName": f"{template}-",
            "parameters": [f"{k}={v}" for k, v in parameters.items()],
        }
        if labels:
            options["labels"] = ",".join(f"{k}={v}" for k, v in labels.items())
        body = {"resourceKind": "WorkflowTemplate", "resourceName": template, "submitOptions": options}
        created = self._request("POST", f"/api/v1/workflows/{self.namespace}/submit", json=body)
        return str(created["metadata"]["name"])

    def create(self, manifest: dict[str, Any]) -> str:
        """Create a Workflow from a full manifest; returns its name."""
        created = self._request("POST", f"/api/v1/workflows/{self.namespace}", json={"workflow": manifest})
        return str(created["metadata"]["name"])

    def get(self, name: str) -> Workflow:
        """The Workflow object."""
        return Workflow(self._request("GET", f"/api/v1/workflows/{self.namespace}/{name}"))

    def resume(self, name: str) -> None:
        """Resume a suspended workflow (what the UI's Resume button does)."""
        self._request("PUT", f"/api/v1/workflows/{self.namespace}/{name}/resume", json={})

    def list_names(self, label_selector: str) -> list[str]:
        """Names of the workflows matching a label selector."""
        listed = self._request(
            "GET", f"/api/v1/workflows/{self.namespace}", params={"listOptions.labelSelector": label_selector}
        )
        return [item["metadata"]["name"] for item in listed.get("items") or []]

    def wait(self, name: str, *, timeout: float, until_suspended: bool = False, poll: float = 5) -> Workflow:
        """Wait until the workflow finishes (or waits on a Suspend node); raise TimeoutError naming it."""
        deadline = time.monotonic() + timeout
        while True:
            wf = self.get(name)
            if wf.phase in FINISHED or (until_suspended and wf.suspended_node()):
                return wf
            if time.monotonic() > deadline:
                running = sorted(
                    str(n.get("displayName")) for n in wf.nodes.values() if n.get("phase") in ("Running", "Pending")
                )
                raise TimeoutError(f"workflow {name} still {wf.phase} after {timeout:.0f}s; running: {running}")
            time.sleep(poll)

    def require_success(self, wf: Workflow) -> Workflow:
        """Return ``wf`` if it succeeded, else raise WorkflowFailed naming it and its failed nodes."""
        if wf.phase != "Succeeded":
            failed = "; ".join(wf.failed_nodes()) or wf.status.get("message", "")
            logs = "".join(
                f"\n--- last lines of {display} (pod {pod}) ---\n{self.log_tail(wf.name, pod)}"
                for display, pod in wf.failed_pods()[:3]
            )
            raise WorkflowFailed(f"workflow {wf.name} ended {wf.phase}: {failed}{logs}")
        return wf

    def log_tail(self, workflow: str, pod: str, *, lines: int = 40) -> str:
        """The last ``lines`` of a pod's main container, live or archived; a short reason if unreadable.

        A failure report must not fail in turn, so any error reading the log is returned as text.
        """
        params = {"podName": pod, "logOptions.container": "main", "logOptions.tailLines": str(lines)}
        try:
            response = self._client.get(f"/api/v1/workflows/{self.namespace}/{workflow}/log", params=params)
            response.raise_for_status()
            # A stream of JSON objects, one per line: {"result": {"content": ..., "podName": ...}}.
            chunks = [json.loads(line).get("result", {}).get("content", "") for line in response.text.splitlines()]
        except (httpx.HTTPError, ValueError) as error:
            return f"(log unavailable: {error})"
        return "\n".join(chunk for chunk in chunks if chunk) or "(empty log)"

    def run(self, template: str, parameters: dict[str, str], *, timeout: float) -> Workflow:
        """Submit and wait; raise WorkflowFailed unless it succeeded."""
        name = self.submit(template, parameters)
        return self.require_success(self.wait(name, timeout=timeout))


def parse_json(value: str | None, default: Any = None) -> Any:
    """Parse an output parameter that holds JSON; ``default`` when empty."""
    if not value:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return value

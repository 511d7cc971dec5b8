"""The parts of the demo's argo-server client that are pure logic: reading a Workflow's status."""

from __future__ import annotations

from scripts.demo.argo import Workflow


def _workflow(nodes: dict[str, dict[str, str]]) -> Workflow:
    return Workflow({"metadata": {"name": "evaluate-6pgwm"}, "status": {"phase": "Failed", "nodes": nodes}})


def test_failed_pods_are_named_as_argo_names_pods_v2() -> None:
    wf = _workflow({
        "evaluate-6pgwm": {"type": "DAG", "phase": "Failed", "displayName": "evaluate-6pgwm"},
        "evaluate-6pgwm-1796235925": {
            "type": "Pod", "phase": "Failed", "displayName": "evaluate(0:0.9.1)(0)", "templateName": "evaluate-version",
        },
        "evaluate-6pgwm-42": {"type": "Pod", "phase": "Succeeded", "displayName": "resolve", "templateName": "resolve"},
        "evaluate-6pgwm-7": {"type": "Pod", "phase": "Error", "displayName": "compare", "templateName": "compare"},
    })  # fmt: skip

    assert wf.failed_pods() == [
        ("compare", "evaluate-6pgwm-compare-7"),
        ("evaluate(0:0.9.1)(0)", "evaluate-6pgwm-evaluate-version-1796235925"),
    ]


def test_a_workflow_without_failed_pods_names_none() -> None:
    wf = _workflow({"evaluate-6pgwm-42": {"type": "Pod", "phase": "Succeeded", "templateName": "resolve"}})

    assert wf.failed_pods() == []

"""A PUT whose client gives up before its body arrives: the shard applies nothing and remembers nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fieldsim import Fleet
from fieldsim.shards import build_app, shard_states
from starlette.types import Message, Scope


def test_a_put_cut_off_mid_body_is_not_applied_and_its_key_stays_free(fieldsim_fleet: Fleet) -> None:
    state = shard_states(fieldsim_fleet)[0]
    device = next(iter(state.parameters))
    before = dict(state.parameters[device])
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/v1/devices/{device}/battery-parameters",
        "raw_path": f"/v1/devices/{device}/battery-parameters".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", b"400"),
            (b"if-match", b'"whatever"'),
            (b"idempotency-key", b"cut-off"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    # Half a body, then the client's connection closes: what uvicorn sends when a client times out.
    messages: Iterator[Message] = iter(
        [
            {"type": "http.request", "body": b'{"device_id": "', "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[Message] = []

    async def receive() -> Message:
        return next(messages)

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(build_app(state)(scope, receive, send))  # raises if the disconnect escapes the app

    assert state.parameters[device] == before
    assert state.puts_applied == 0
    assert "cut-off" not in state.idempotent
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]

"""The five API shard services as ASGI apps (starlette), implementing docs/contracts.md exactly.

Bodies follow contracts/shard-api/*.schema.json (checked by tests/unit/fieldsim/test_contract_specs.py).

Each shard owns the devices with ``shard_of(device_id) == shard``. State lives in a ``ShardState`` the
caller keeps, so tests can set faults and read counters in-process; the same is reachable over HTTP at
``/_sim/faults`` and ``/_sim/stats`` (``?per_device=true`` adds the PUTs applied to each device; not part of
the contract, exempt from faults and counters).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import struct
import threading
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import polars as pl
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from fieldsim.contracts import N_SHARDS, battery_parameters, shard_of
from fieldsim.fleet import Fleet

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_RFC3339 = "%Y-%m-%dT%H:%M:%S%.6fZ"  # polars strftime; the same text as fieldsim.contracts.STORED_TIME


@dataclass(frozen=True)
class Faults:
    """Faults a shard injects into contract requests; rates are per-request probabilities.

    Rates are tried in the order reset, truncate, error (503), throttle (429 with Retry-After), stall
    (wait ``stall_s``, then answer: a client with a shorter timeout gives up while the request is still
    carried out) on one uniform draw, so their sum should stay <= 1. ``budget`` caps how many faulty responses are given
    (None: no cap), e.g. ``Faults(error_rate=1.0, budget=2)`` fails the next two requests only.
    """

    latency_s: float = 0.0
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after_s: int = 1
    truncate_rate: float = 0.0
    reset_rate: float = 0.0
    stall_rate: float = 0.0
    stall_s: float = 5.0
    budget: int | None = None
    seed: int = 0


@dataclass
class ShardState:
    """One shard's data, PUT bookkeeping, fault settings and counters."""

    shard: int
    devices: list[dict[str, Any]]
    capacity_tests: list[dict[str, Any]]
    version_events: list[dict[str, Any]]
    parameters: dict[str, dict[str, Any]]
    n_shards: int = N_SHARDS
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    puts_applied: int = 0
    applied_by_device: dict[str, int] = field(default_factory=dict)  # PUTs that changed each device
    faults_given: int = 0
    idempotent: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(default_factory=random.Random)

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault settings (and restart their random sequence from ``faults.seed``)."""
        with self.lock:
            self.faults = faults
            self.faults_given = 0
            # Reproducible fault sequences for tests, not security: a seeded PRNG is the point.
            self._rng = random.Random(faults.seed * 1009 + self.shard)  # noqa: S311

    def draw_fault(self) -> str | None:
        """Pick the fault of the next request, or None."""
        with self.lock:
            f = self.faults
            if f.budget is not None and self.faults_given >= f.budget:
                return None
            u = self._rng.random()
            edge = 0.0
            for name, rate in (
                ("reset", f.reset_rate),
                ("truncate", f.truncate_rate),
                ("error", f.error_rate),
                ("throttle", f.throttle_rate),
                ("stall", f.stall_rate),
            ):
                edge += rate
                if u < edge:
                    self.faults_given += 1
                    return name
            return None


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    out = frame.with_columns(pl.col(pl.Datetime).dt.strftime(_RFC3339))
    return out.to_dicts()


def shard_states(fleet: Fleet, n_shards: int = N_SHARDS) -> list[ShardState]:
    """Split the fleet's API data by ``shard_of`` into one state per shard."""

    def part(frame: pl.DataFrame, shard: int) -> pl.DataFrame:
        owner = frame["device_id"].map_elements(lambda d: shard_of(d, n_shards), return_dtype=pl.Int64)
        return frame.filter(owner == shard)

    states = []
    for shard in range(n_shards):
        params = _records(part(fleet.battery_parameters, shard))
        states.append(
            ShardState(
                shard=shard,
                devices=_records(part(fleet.devices, shard)),
                capacity_tests=_records(part(fleet.capacity_tests, shard).sort("tested_at", "test_id")),
                version_events=_records(
                    part(fleet.version_events, shard).sort("effective_at", "device_id", "component", "version")
                ),
                parameters={p["device_id"]: p for p in params},
                n_shards=n_shards,
            )
        )
    return states


def _error(status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _etag(params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:20]
    return f'"{digest}"'


def _day(request: Request, name: str, required: bool = False) -> str | None:
    value = request.query_params.get(name)
    if value is None:
        if required:
            raise _BadRequestError(f"query parameter {name!r} is required (a date, YYYY-MM-DD)")
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise _BadRequestError(f"query parameter {name}={value!r} is not a date (YYYY-MM-DD)") from None


class _BadRequestError(Exception):
    pass


def _page(request: Request, items: list[dict[str, Any]]) -> JSONResponse:
    try:
        limit = int(request.query_params.get("limit", DEFAULT_LIMIT))
        offset = int(request.query_params.get("page_token") or 0)
    except ValueError:
        raise _BadRequestError("limit and page_token must be what this API returned (integers)") from None
    if not 1 <= limit <= MAX_LIMIT or offset < 0 or offset > len(items):
        raise _BadRequestError(f"limit must be 1..{MAX_LIMIT} and page_token a token this API returned")
    end = offset + limit
    token = str(end) if end < len(items) else None
    return JSONResponse({"items": items[offset:end], "next_page_token": token})


def build_app(state: ShardState) -> FaultLayer:
    """The ASGI app of one shard: the contract routes wrapped in the fault-injection layer."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "shard": state.shard})

    async def devices(request: Request) -> Response:
        return _page(request, state.devices)

    async def capacity_tests(request: Request) -> Response:
        start, end = _day(request, "from"), _day(request, "to")
        # RFC 3339 strings in UTC with fixed width sort like the times they name.
        items = [
            t
            for t in state.capacity_tests
            if (start is None or t["tested_at"] >= start) and (end is None or t["tested_at"] < end)
        ]
        return _page(request, items)

    async def version_history(request: Request) -> Response:
        end = _day(request, "to", required=True) or ""
        start = _day(request, "from")
        items = [
            e for e in state.version_events if e["effective_at"] < end and (start is None or e["effective_at"] >= start)
        ]
        return _page(request, items)

    async def list_parameters(request: Request) -> Response:
        # A PUT replaces a device's value in place, so the dict's order (the fleet's) is a stable paging order.
        return _page(request, list(state.parameters.values()))

    def _owned(device_id: str) -> JSONResponse | None:
        if device_id in state.parameters:
            return None
        owner = shard_of(device_id, state.n_shards)
        where = f"it belongs to shard {owner}" if owner != state.shard else "no such device"
        return _error(404, "not_found", f"device {device_id!r} is not on shard {state.shard}: {where}")

    async def get_parameters(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        missing = _owned(device_id)
        if missing is not None:
            return missing
        params = state.parameters[device_id]
        return JSONResponse(params, headers={"ETag": _etag(params)})

    async def put_parameters(request: Request) -> Response:
        device_id = request.path_params["device_id"]
        missing = _owned(device_id)
        if missing is not None:
            return missing
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(400, "idempotency_key_required", "PUT needs an Idempotency-Key header")
        with state.lock:
            seen = state.idempotent.get(key)
        if seen is not None:
            status, body, headers = seen
            return Response(body, status_code=status, headers=headers, media_type="application/json")
        if_match = request.headers.get("if-match")
        if not if_match:
            return _error(428, "precondition_required", "PUT needs If-Match with the ETag from a GET")
        try:
            stored = battery_parameters(await request.json())
        except ClientDisconnect:
            # The client gave up (its timeout) before its body arrived: nothing was applied and nothing
            # is remembered under the key, so its retry is a first attempt. No one reads this reply.
            return Response(status_code=499)
        except ValueError as exc:  # json.JSONDecodeError is one too
            return _error(422, "invalid_body", f"body is not BatteryParameters: {exc}")
        if stored["device_id"] != device_id:
            return _error(422, "invalid_body", f"body device_id {stored['device_id']!r} differs from {device_id!r}")
        with state.lock:
            current = state.parameters[device_id]
            if if_match != _etag(current):
                response: Response = _error(
                    412, "precondition_failed", f"ETag {if_match} is stale", {"ETag": _etag(current)}
                )
            else:
                state.parameters[device_id] = stored
                state.puts_applied += 1
                state.applied_by_device[device_id] = state.applied_by_device.get(device_id, 0) + 1
                response = JSONResponse(stored, headers={"ETag": _etag(stored)})
            state.idempotent[key] = (response.status_code, bytes(response.body), dict(response.headers))
        return response

    async def sim_faults(request: Request) -> Response:
        state.set_faults(Faults(**(await request.json())))
        return JSONResponse(asdict(state.faults))

    async def sim_stats(request: Request) -> Response:
        stats: dict[str, object] = {
            "shard": state.shard,
            "requests": state.requests,
            "puts_applied": state.puts_applied,
            "faults_given": state.faults_given,
            "faults": asdict(state.faults),
        }
        if request.query_params.get("per_device") == "true":  # what a cluster test counts writes by
            with state.lock:
                stats["applied_by_device"] = dict(state.applied_by_device)
        return JSONResponse(stats)

    routes = [
        Route("/healthz", healthz),
        Route("/v1/devices", devices),
        Route("/v1/capacity-tests", capacity_tests),
        Route("/v1/version-history", version_history),
        Route("/v1/battery-parameters", list_parameters),
        Route("/v1/devices/{device_id}/battery-parameters", get_parameters, methods=["GET"]),
        Route("/v1/devices/{device_id}/battery-parameters", put_parameters, methods=["PUT"]),
        Route("/_sim/faults", sim_faults, methods=["PUT"]),
        Route("/_sim/stats", sim_stats),
    ]

    async def bad_request(request: Request, exc: Exception) -> Response:
        return _error(400, "bad_request", str(exc))

    inner = Starlette(routes=routes, exception_handlers={_BadRequestError: bad_request})
    return FaultLayer(inner, state)


class FaultLayer:
    """Outermost ASGI layer: counts contract requests and injects the shard's faults.

    Resets and truncations need the raw connection: uvicorn passes its request cycle's bound ``send``,
    whose ``transport`` we abort (with SO_LINGER 0, so the client sees a TCP reset) or close early.
    """

    def __init__(self, app: Starlette, state: ShardState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count, then delay, fail, cut or pass the request on, as the fault settings say."""
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        with self.state.lock:
            self.state.requests += 1
        faults = self.state.faults
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        fault = self.state.draw_fault()
        if fault == "reset":
            _abort(send, reset=True)
        elif fault == "error":
            await _error(503, "unavailable", f"shard {self.state.shard}: injected fault")(scope, receive, send)
        elif fault == "throttle":
            await _error(429, "too_many_requests", "slow down", {"Retry-After": str(faults.retry_after_s)})(
                scope, receive, send
            )
        elif fault == "truncate":
            await self.app(scope, receive, _Truncating(send))
        elif fault == "stall":
            await asyncio.sleep(faults.stall_s)
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _abort(send: Send, *, reset: bool) -> None:
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None:
        raise ConnectionAbortedError("injected connection reset (no transport to abort)")
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    # Tell uvicorn the client is gone, so it does not try to answer on the dead connection.
    cycle.disconnected = True


class _Truncating:
    """Send the headers (with the full Content-Length) and half of the body, then close."""

    def __init__(self, send: Send) -> None:
        self.send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            await self.send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            _abort(self.send, reset=False)
            return
        await self.send(message)

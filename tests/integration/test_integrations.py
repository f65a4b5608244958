"""Integration hooks over HTTP against a real local server.

Each test starts an HTTP server on a free loopback port (so the hooks are
built with ``allow_private=True``, except where the refusal of private
addresses is the point) and checks what was sent and what came back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

import httpx
import pytest

from dotmac.ticketing.consumers.kafka.broker import free_port
from dotmac.ticketing.consumers.workflows.integrations import (
    RESPONSE_MAX_BYTES,
    HttpIntegrations,
    IntegrationError,
    IntegrationHook,
)
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument
from tests.integration.external_systems import (
    Call,
    ExternalSystem,
    Reply,
    external_system,
)

T = TypeVar("T")
KEY = "7b0b9c3e-4f1e-4a57-9d7e-0c0f3f1b2a11:3:verify_account"
PAYLOAD = {"customer_id": "cust-42", "ticket_id": "t-1", "amount": 12.5}


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def echo(call: Call, seen: int) -> Reply:
    return Reply(body={"account": {"id": "cust-42", "tier": "gold"}, "seen": seen})


def hooks(
    system: ExternalSystem | None = None,
    *,
    allow_private: bool = True,
    **hook: Any,
) -> HttpIntegrations:
    config: dict[str, Any] = {}
    if system is not None:
        config["account_lookup"] = {"url": system.url("/hooks/account"), **hook}
    return HttpIntegrations(config, allow_private=allow_private)


async def call(
    integrations: HttpIntegrations,
    name: str = "account_lookup",
    payload: Mapping[str, Any] = PAYLOAD,
) -> dict[str, Any]:
    async with integrations:
        return await integrations.call(name, payload, idempotency_key=KEY)


def failure(integrations: HttpIntegrations, name: str = "account_lookup") -> Any:
    with pytest.raises(IntegrationError) as raised:
        run(call(integrations, name))
    return raised.value


# -- success ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "header", "expected"),
    [
        (None, "authorization", None),
        ({"type": "bearer", "token": "tok-123"}, "authorization", "Bearer tok-123"),
        (
            {"type": "basic", "username": "ticketing", "password": "p:ss w0rd"},
            "authorization",
            "Basic " + base64.b64encode(b"ticketing:p:ss w0rd").decode(),
        ),
        (
            {"type": "header", "name": "X-Api-Key", "value": "key 42"},
            "x-api-key",
            "key 42",
        ),
    ],
    ids=["no-auth", "bearer", "basic", "header"],
)
def test_a_call_posts_json_with_the_auth_and_the_idempotency_key(
    auth: dict[str, str] | None, header: str, expected: str | None
) -> None:
    with external_system(echo) as system:
        config = {} if auth is None else {"auth": auth}
        answer = run(call(hooks(system, **config)))
        (received,) = system.received()
    assert answer == {"account": {"id": "cust-42", "tier": "gold"}, "seen": 0}
    assert (received.method, received.path) == ("POST", "/hooks/account")
    assert received.json() == PAYLOAD
    assert received.header("content-type") == "application/json"
    assert received.header("accept") == "application/json"
    assert received.header("idempotency-key") == KEY
    assert received.header("host") == f"127.0.0.1:{system.port}"
    assert received.header(header) == expected


def test_a_repeated_call_carries_the_same_key() -> None:
    with external_system(echo) as system:
        integrations = hooks(system)

        async def twice() -> list[dict[str, Any]]:
            async with integrations:
                return [
                    await integrations.call(
                        "account_lookup", PAYLOAD, idempotency_key=KEY
                    )
                    for _ in range(2)
                ]

        first, second = run(twice())
        calls = system.received()
    assert (first["seen"], second["seen"]) == (0, 1)
    assert [c.header("idempotency-key") for c in calls] == [KEY, KEY]


def test_no_content_is_an_empty_answer() -> None:
    with external_system(lambda c, n: Reply(status=204, body=b"")) as system:
        assert run(call(hooks(system))) == {}


def test_hooks_configured_by_a_validated_settings_document() -> None:
    with external_system(echo) as system:
        document = TenantSettingsDocument.model_validate(
            {
                "integrations": {
                    "billing_history": {
                        "url": system.url("/billing?x=1"),
                        "timeout_seconds": 2,
                        "auth": {"type": "bearer", "token": "t"},
                    }
                }
            }
        ).document()
        integrations = HttpIntegrations(document["integrations"], allow_private=True)
        hook: IntegrationHook = integrations
        assert integrations.names == ("billing_history",)

        async def lookup() -> dict[str, Any]:
            async with integrations:
                return await hook.call("billing_history", {}, idempotency_key="k-1")

        assert run(lookup())["seen"] == 0
        assert system.received()[0].path == "/billing?x=1"


def test_a_shared_client_is_used_and_left_open() -> None:
    async def scenario(system: ExternalSystem) -> bool:
        async with httpx.AsyncClient() as client:
            config = {"account_lookup": {"url": system.url("/a")}}
            integrations = HttpIntegrations(config, client, allow_private=True)
            await integrations.call("account_lookup", {}, idempotency_key="k")
            await integrations.aclose()
            return client.is_closed

    with external_system(echo) as system:
        assert run(scenario(system)) is False
        assert len(system.received()) == 1


# -- the other system is down -------------------------------------------------


def test_no_answer_within_the_timeout_means_down() -> None:
    with external_system(lambda c, n: Reply(body={}, delay=3)) as system:
        started = time.monotonic()
        error = failure(hooks(system, timeout_seconds=0.3))
        waited = time.monotonic() - started
    assert error.retryable is True
    assert str(error) == "integration 'account_lookup' is down: no answer within 0.3 s"
    assert error.status is None
    # Gave up at the timeout, not when the server finally answered.
    assert waited < 2.5


def test_the_timeout_bounds_the_whole_call_not_each_read() -> None:
    # Every byte arrives well within the timeout; the whole answer does not.
    slow = Reply(body={"padding": "x" * 40}, drip=0.05)
    with external_system(lambda c, n: slow) as system:
        error = failure(hooks(system, timeout_seconds=0.5))
    assert error.retryable is True
    assert "is down: no answer within 0.5 s" in str(error)


def test_connection_refused_means_down() -> None:
    port = free_port()  # nothing listens there
    integrations = HttpIntegrations(
        {"account_lookup": {"url": f"http://127.0.0.1:{port}/hooks"}},
        allow_private=True,
    )
    error = failure(integrations)
    assert error.retryable is True
    assert str(error) == (
        f"integration 'account_lookup' is down: connection refused by 127.0.0.1:{port}"
    )


def test_a_server_that_went_away_is_down_then_back_up() -> None:
    with external_system(echo) as system:
        url = system.url("/hooks/account")
        assert run(call(hooks(system)))["seen"] == 0
    # The same port, the server stopped: refused.
    config = {"account_lookup": {"url": url}}
    error = failure(HttpIntegrations(config, allow_private=True))
    assert error.retryable is True
    assert "is down: connection refused" in str(error)


# -- the other system answers, but not with success ------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_and_busy_answers_are_retryable(status: int) -> None:
    reply = Reply(status=status, body={"error": "database unavailable"})
    with external_system(lambda c, n: reply) as system:
        error = failure(hooks(system))
    assert error.retryable is True
    assert error.status == status
    assert str(error).startswith(
        f"integration 'account_lookup' failed: it answered {status} "
    )
    assert str(error).endswith('{"error": "database unavailable"}')
    assert error.as_dict() == {
        "integration": "account_lookup",
        "reason": str(error),
        "retryable": True,
        "status": status,
    }


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_client_errors_are_not_retryable(status: int) -> None:
    reply = Reply(status=status, body={"error": "no such customer"})
    with external_system(lambda c, n: reply) as system:
        error = failure(hooks(system))
    assert error.retryable is False
    assert error.status == status
    assert str(error).startswith(
        f"integration 'account_lookup' refused the request: it answered {status} "
    )
    assert "no such customer" in str(error)


def test_a_bad_request_names_the_status_and_the_answer() -> None:
    reply = Reply(status=400, body={"error": "amount must be positive"})
    with external_system(lambda c, n: reply) as system:
        error = failure(hooks(system))
    assert str(error) == (
        "integration 'account_lookup' refused the request: it answered"
        ' 400 Bad Request: {"error": "amount must be positive"}'
    )


def test_redirects_are_not_followed_even_by_a_client_that_would() -> None:
    def answer(call: Call, seen: int) -> Reply:
        if call.path == "/elsewhere":
            return Reply(body={"followed": True})
        return Reply(status=307, body=b"", headers={"Location": "/elsewhere"})

    async def scenario(system: ExternalSystem) -> IntegrationError:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            config = {"account_lookup": {"url": system.url("/hooks")}}
            integrations = HttpIntegrations(config, client, allow_private=True)
            with pytest.raises(IntegrationError) as raised:
                await integrations.call("account_lookup", {}, idempotency_key="k")
            return raised.value

    with external_system(answer) as system:
        error = run(scenario(system))
        assert [c.path for c in system.received()] == ["/hooks"]
    assert error.retryable is False
    assert error.status == 307
    assert "redirects are not followed" in str(error)


@pytest.mark.parametrize(
    ("reply", "shown"),
    [
        (
            Reply(body="<html>Oops</html>", content_type="text/html"),
            "<html>Oops</html>",
        ),
        (Reply(body=b""), "(empty)"),
        (Reply(body=[1, 2, 3]), "[1, 2, 3]"),
        (Reply(body='"just a string"'), '"just a string"'),
        (Reply(body='{"amount": NaN}'), '{"amount": NaN}'),
        (Reply(body='{"note": "a\\u0000b"}'), '{"note": "a\\u0000b"}'),
        (Reply(body=b'{"name": "\xff"}'), '{"name": "\ufffd"}'),
    ],
    ids=["html", "empty", "array", "string", "nan", "nul", "not-utf-8"],
)
def test_an_answer_that_is_not_a_storable_json_object_is_not_retryable(
    reply: Reply, shown: str
) -> None:
    with external_system(lambda c, n: reply) as system:
        error = failure(hooks(system))
    assert error.retryable is False
    assert error.status == 200
    assert str(error) == (
        f"integration 'account_lookup' answered 200 OK without a JSON object: {shown}"
    )


def test_an_oversized_answer_is_not_retryable() -> None:
    big = Reply(body={"blob": "x" * RESPONSE_MAX_BYTES})
    with external_system(lambda c, n: big) as system:
        error = failure(hooks(system))
    assert error.retryable is False
    assert str(error) == (
        f"integration 'account_lookup' answered more than {RESPONSE_MAX_BYTES} bytes"
    )


# -- refused before sending ------------------------------------------------------


def test_a_hook_that_is_not_configured_is_not_retryable() -> None:
    with external_system(echo) as system:
        error = failure(hooks(system), "billing_history")
        assert system.received() == []
    assert error.retryable is False
    assert error.name == "billing_history"
    assert str(error) == "no integration 'billing_history' configured"
    assert error.as_dict() == {
        "integration": "billing_history",
        "reason": "no integration 'billing_history' configured",
        "retryable": False,
    }


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.1"])
def test_private_addresses_are_refused_unless_allowed(host: str) -> None:
    with external_system(echo) as system:
        url = f"http://{host}:{system.port}/hooks/account"
        config = {"account_lookup": {"url": url}}
        error = failure(HttpIntegrations(config, allow_private=False))
        assert system.received() == []
    assert error.retryable is False
    assert str(error).startswith(f"integration 'account_lookup' may not call {url}: ")
    assert "TICKETING_INTEGRATIONS_ALLOW_PRIVATE=true allows it" in str(error)


def test_the_same_loopback_hook_is_called_when_private_addresses_are_allowed() -> None:
    with external_system(echo) as system:
        url = f"http://localhost:{system.port}/hooks/account"
        config = {"account_lookup": {"url": url}}
        answer = run(call(HttpIntegrations(config, allow_private=True)))
        assert answer["seen"] == 0
        assert system.received()[0].header("host") == f"localhost:{system.port}"


def test_caller_mistakes_are_value_errors_and_send_nothing() -> None:
    with external_system(echo) as system:
        integrations = hooks(system)
        with pytest.raises(ValueError, match="not JSON"):
            run(call(integrations, payload={"amount": float("nan")}))
        with pytest.raises(ValueError, match="not JSON"):
            run(call(integrations, payload={"when": object()}))

        async def bad_key(key: str) -> None:
            await integrations.call("account_lookup", {}, idempotency_key=key)

        for key in ("", "a b", "x\r\nInjected: 1", "k" * 256):
            with pytest.raises(ValueError, match="idempotency key"):
                run(bad_key(key))
        assert system.received() == []


def test_error_payloads_are_json_ready() -> None:
    error = IntegrationError("diagnostics", "integration 'diagnostics' is down", True)
    assert json.loads(json.dumps(error.as_dict())) == error.as_dict()
    assert (error.name, error.retryable, error.status) == ("diagnostics", True, None)

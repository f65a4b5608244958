"""Integration hooks: the calls workflow steps make to other systems.

A step that needs another system (look up the account, read the billing
history, run diagnostics, apply an adjustment) calls a hook by name through
:class:`IntegrationHook`. :class:`HttpIntegrations` is the implementation a
tenant configures in its settings' ``integrations`` section
(``schemas.settings.IntegrationConfig``)::

    {"account_lookup": {"url": "https://crm.example.com/hooks/account",
                        "timeout_seconds": 5,
                        "auth": {"type": "bearer", "token": "..."}}}

A call POSTs the payload as JSON to the URL with the configured auth and
``Idempotency-Key: <key>``. The key is the caller's (derived from the ticket
event that caused the step), so a call repeated after a timeout, a 5xx or a
crash between the effect and its record is recognisable by a receiver that
honours the header (draft-ietf-httpapi-idempotency-key-header). The answer:

============================================  =========================
what happened                                 outcome
============================================  =========================
2xx with a JSON object (204: no content)      the object (204: ``{}``)
2xx with anything else                        error, not retryable
connection refused or reset, DNS failure,     error, retryable:
no complete answer within ``timeout_seconds``  "... is down: ..."
5xx, 408, 425, 429                            error, retryable
3xx (redirects are not followed), other 4xx   error, not retryable
hook not configured                           HookNotConfigured: error,
                                              not retryable (a step hands
                                              itself to a person)
private or loopback address (unless allowed)  error, not retryable
============================================  =========================

Admin-chosen URLs are checked like webhooks' (``consumers.channels.
url_safety``): private, loopback and link-local addresses are refused
unless ``TICKETING_INTEGRATIONS_ALLOW_PRIVATE=true``, after DNS resolution,
and the request goes to the checked address.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Protocol

import httpx
import structlog

from dotmac.ticketing.domain.workflow import IntegrationNotConfigured
from dotmac.ticketing.service.url_safety import (
    INTEGRATIONS,
    CheckedTarget,
    UnresolvedHost,
    UnsafeWebhookURL,
    resolve_checked_target,
)

__all__ = [
    "ACCOUNT_LOOKUP",
    "APPLY_ADJUSTMENT",
    "BILLING_HISTORY",
    "BUILT_IN_HOOKS",
    "DIAGNOSTICS",
    "HookNotConfigured",
    "HttpIntegrations",
    "IntegrationError",
    "IntegrationHook",
]

log = structlog.get_logger(__name__)

#: The hooks the built-in workflows call (issue #6).
ACCOUNT_LOOKUP = "account_lookup"
BILLING_HISTORY = "billing_history"
APPLY_ADJUSTMENT = "apply_adjustment"
DIAGNOSTICS = "diagnostics"
BUILT_IN_HOOKS = (ACCOUNT_LOOKUP, BILLING_HISTORY, APPLY_ADJUSTMENT, DIAGNOSTICS)

IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "dotmac-ticketing-integrations/1"
#: As the settings default: a hook without ``timeout_seconds``.
DEFAULT_TIMEOUT_SECONDS = 5.0
#: A hook's answer is data for a ticket's history, not a download.
RESPONSE_MAX_BYTES = 1024 * 1024
# Busy or not ready rather than wrong: the same request may succeed later.
_RETRYABLE_4XX = frozenset({408, 425, 429})
_KEY = re.compile(r"[!-~]{1,255}")
_EXCERPT = 300


class IntegrationHook(Protocol):
    """Calls another system on behalf of a workflow step."""

    async def call(
        self, name: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """The system's answer, or raise :class:`IntegrationError`.

        The same ``idempotency_key`` must be passed when a call is repeated,
        so the other system can recognise the repetition.
        """
        ...


class IntegrationError(Exception):
    """A hook call did not succeed; ``retryable`` says whether to try again.

    ``reason`` is the whole message, naming the hook, e.g. "integration
    'account_lookup' is down: connection refused by crm.example.com:443".
    ``status`` is the HTTP status when the system answered.
    """

    def __init__(
        self, name: str, reason: str, retryable: bool, *, status: int | None = None
    ) -> None:
        super().__init__(name, reason, retryable)
        self.name = name
        self.reason = reason
        self.retryable = retryable
        self.status = status

    def __str__(self) -> str:
        return self.reason

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for a ``WorkflowStepFailed`` event."""
        failure: dict[str, Any] = {
            "integration": self.name,
            "reason": self.reason,
            "retryable": self.retryable,
        }
        if self.status is not None:
            failure["status"] = self.status
        return failure


class HookNotConfigured(IntegrationError, IntegrationNotConfigured):
    """The tenant's settings name no hook ``name``: a step hands itself to a person.

    An :class:`IntegrationError` (not retryable) for callers of the hooks,
    and the domain's :class:`~domain.workflow.IntegrationNotConfigured` for
    the workflow steps.
    """

    def __init__(self, name: str) -> None:
        # The domain's constructor (IntegrationError's would pass its three
        # arguments on to it); then IntegrationError's attributes.
        IntegrationNotConfigured.__init__(self, name)
        self.reason = f"no integration {name!r} configured"
        self.retryable = False
        self.status = None


class HttpIntegrations:
    """The hooks of one tenant's settings, called over HTTP.

    ``config`` is the settings' ``integrations`` section (validated by
    ``schemas.settings``). Pass a shared ``client`` to reuse connections
    across tenants; it is then the caller's to close (redirects are never
    followed, whatever the client's default). Without one, this object
    owns a client: close it with :meth:`aclose` or ``async with``.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        client: httpx.AsyncClient | None = None,
        *,
        allow_private: bool = False,
    ) -> None:
        self._config = config
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._allow_private = allow_private

    @property
    def names(self) -> tuple[str, ...]:
        """The configured hook names."""
        return tuple(self._config)

    async def call(
        self, name: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """POST ``payload`` to the hook ``name``; its JSON object answer.

        Raises :class:`IntegrationError` as in the module's table, and
        ``ValueError`` for a caller's mistake (a payload that is not JSON,
        an idempotency key that cannot be a header value).
        """
        if not _KEY.fullmatch(idempotency_key):
            raise ValueError(
                "the idempotency key must be 1 to 255 printable ASCII characters"
            )
        body = _json_body(payload)
        hook = self._config.get(name)
        if not isinstance(hook, Mapping) or not hook.get("url"):
            raise HookNotConfigured(name)
        url = str(hook["url"])
        timeout = float(hook.get("timeout_seconds") or DEFAULT_TIMEOUT_SECONDS)
        started = time.monotonic()
        try:
            # One deadline for all of it: httpx's timeouts are per phase, so
            # a server dripping a byte a second would never time out there.
            async with asyncio.timeout(timeout):
                target = await resolve_checked_target(
                    url, self._allow_private, INTEGRATIONS
                )
                headers = {
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    IDEMPOTENCY_HEADER: idempotency_key,
                    "User-Agent": USER_AGENT,
                    "Host": target.host,
                    **_auth_headers(name, hook.get("auth")),
                }
                status, reason, data = await self._post(
                    name, target, body, headers, timeout
                )
        except UnsafeWebhookURL as error:
            raise IntegrationError(
                name, f"integration {name!r} may not call {url}: {error}", False
            ) from error
        except UnresolvedHost as error:
            raise _down(name, str(error)) from error
        except (TimeoutError, httpx.TimeoutException) as error:
            raise _down(name, f"no answer within {timeout:g} s") from error
        except httpx.ConnectError as error:
            raise _down(name, f"{_os_reason(error)} by {_host_port(url)}") from error
        except httpx.HTTPError as error:
            # Reset or closed mid-answer, a protocol error: the far side
            # broke, and a repeat with the same key is safe.
            raise _down(name, f"{_os_reason(error)} ({_host_port(url)})") from error
        log.info(
            "integration called",
            integration=name,
            status=status,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return _answer(name, status, reason, data)

    async def _post(
        self,
        name: str,
        target: CheckedTarget,
        body: bytes,
        headers: dict[str, str],
        timeout: float,
    ) -> tuple[int, str, bytes]:
        async with self._client.stream(
            "POST",
            target.url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            extensions={"sni_hostname": target.server_name},
        ) as response:
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > RESPONSE_MAX_BYTES:
                    raise IntegrationError(
                        name,
                        f"integration {name!r} answered more than"
                        f" {RESPONSE_MAX_BYTES} bytes",
                        retryable=False,
                        status=response.status_code,
                    )
            return response.status_code, response.reason_phrase, bytes(data)

    async def aclose(self) -> None:
        """Close the client if this object made it."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> HttpIntegrations:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _json_body(payload: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(dict(payload), allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValueError(f"the payload is not JSON: {error}") from error
    return text.encode()


def _auth_headers(name: str, auth: Any) -> dict[str, str]:
    if auth is None:
        return {}
    kind = auth.get("type") if isinstance(auth, Mapping) else None
    if kind == "bearer":
        return {"Authorization": f"Bearer {auth['token']}"}
    if kind == "basic":
        pair = f"{auth['username']}:{auth['password']}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    if kind == "header":
        return {str(auth["name"]): str(auth["value"])}
    raise IntegrationError(
        name, f"integration {name!r} has an unknown auth type {kind!r}", False
    )


def _answer(name: str, status: int, reason: str, data: bytes) -> dict[str, Any]:
    answered = f"{status} {reason}".strip()
    if 200 <= status < 300:
        if status == 204:
            return {}
        value = _json_object(data)
        if value is None:
            raise IntegrationError(
                name,
                f"integration {name!r} answered {answered} without a JSON object:"
                f" {_excerpt(data)}",
                retryable=False,
                status=status,
            )
        return value
    if status >= 500 or status in _RETRYABLE_4XX:
        raise IntegrationError(
            name,
            f"integration {name!r} failed: it answered {answered}: {_excerpt(data)}",
            retryable=True,
            status=status,
        )
    what = "redirects are not followed" if 300 <= status < 400 else _excerpt(data)
    raise IntegrationError(
        name,
        f"integration {name!r} refused the request: it answered {answered}: {what}",
        retryable=False,
        status=status,
    )


def _json_object(data: bytes) -> dict[str, Any] | None:
    """The answer as a JSON object that can be stored, else None.

    NaN and Infinity (which Python's parser accepts) and NUL characters
    (which PostgreSQL text cannot hold) would poison the ticket's history
    and the read models, so they make the answer invalid.
    """
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or _has_nul(value):
        return None
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _down(name: str, why: str) -> IntegrationError:
    return IntegrationError(name, f"integration {name!r} is down: {why}", True)


def _os_reason(error: BaseException) -> str:
    """The operating system's word for a failed connection, if there is one."""
    cause: BaseException | None = error
    found = ""
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, OSError) and cause.strerror:
            found = found or cause.strerror.lower()
        cause = cause.__cause__ or cause.__context__
    return found or str(error) or type(error).__name__


def _host_port(url: str) -> str:
    parts = httpx.URL(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.host}:{port}"


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    if not text:
        return "(empty)"
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"

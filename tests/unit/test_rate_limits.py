"""The limits a tenant gets, and how they are announced on each answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from limits import parse
from pydantic import ValidationError

from dotmac.ticketing.service.api.rate_limits import (
    Limits,
    TenantLimits,
    Usage,
    policy_header,
    remaining_header,
    tenant_limits,
)
from dotmac.ticketing.service.settings import Settings

DEFAULTS = Limits(tenant="1000/second", subject="300/second")


def test_a_tenants_own_limits_win_and_the_defaults_fill_the_rest() -> None:
    own = {"rate_limits": {"tenant": None, "subject": "5/minute"}}

    assert tenant_limits(own, DEFAULTS) == Limits("1000/second", "5/minute")
    assert tenant_limits({}, DEFAULTS) == DEFAULTS


def test_a_tenants_limits_are_looked_up_again_after_the_ttl() -> None:
    documents: list[dict[str, Any]] = [{"rate_limits": {"subject": "1/second"}}]
    now = [0.0]
    limits = TenantLimits(
        lambda tenant: (1, documents[-1]), DEFAULTS, ttl=5.0, monotonic=lambda: now[0]
    )

    assert asyncio.run(limits("t")).subject == "1/second"
    documents.append({"rate_limits": {"subject": "2/second"}})
    now[0] = 4.9
    assert asyncio.run(limits("t")).subject == "1/second"
    now[0] = 5.0
    assert asyncio.run(limits("t")).subject == "2/second"


def test_the_headers_name_each_policy_its_quota_window_and_what_is_left() -> None:
    usages = [
        Usage("tenant", parse("100/minute"), True, 99, 42),
        Usage("subject", parse("10/second"), True, 3, 1),
    ]

    assert policy_header(usages) == '"tenant";q=100;w=60, "subject";q=10;w=1'
    assert remaining_header(usages) == '"tenant";r=99;t=42, "subject";r=3;t=1'


@pytest.mark.parametrize("rate", ["lots", "0/second", "5/fortnight", "5 per second"])
def test_a_default_that_is_not_a_rate_stops_the_start(rate: str) -> None:
    with pytest.raises(ValidationError, match=r"rate_limit_tenant|TICKETING_RATE"):
        Settings(rate_limit_tenant=rate)


def test_empty_defaults_mean_no_limit_and_the_store_must_be_known() -> None:
    assert (
        Settings(rate_limit_tenant="", rate_limit_subject=" ").rate_limit_tenant is None
    )
    with pytest.raises(ValidationError, match="redis"):
        Settings(rate_limit_storage="memcached://x")


def test_without_the_database_the_last_known_limits_or_the_defaults_hold() -> None:
    answers: list[object] = [(1, {"rate_limits": {"subject": "1/second"}})]
    now = [0.0]

    def settings_of(tenant: str) -> tuple[int, dict[str, Any]]:
        answer = answers[-1]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    limits = TenantLimits(settings_of, DEFAULTS, ttl=5.0, monotonic=lambda: now[0])
    assert asyncio.run(limits("t")).subject == "1/second"
    answers.append(OSError("database down"))
    now[0] = 10.0

    assert asyncio.run(limits("t")).subject == "1/second"
    assert asyncio.run(limits("other")) == DEFAULTS

"""Choosing the next deliveries fairly across lanes (pure)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from dotmac.ticketing.consumers.notify.circuit_breaker import Admission
from dotmac.ticketing.consumers.notify.delivery_lanes import (
    Candidate,
    Limits,
    Load,
    choose,
    lane_of,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def due(
    tenant: str,
    channel: str,
    endpoint: str | None,
    count: int,
    *,
    start: int = 0,
    admission: Admission = Admission.OPEN,
) -> list[Candidate]:
    lane = lane_of(tenant, channel, endpoint)
    return [
        Candidate(
            key=f"{lane}#{i}",
            lane=lane,
            tenant_id=tenant,
            channel=channel,
            due=T0 + timedelta(seconds=start + i),
            admission=admission,
            webhook_id=endpoint,
        )
        for i in range(count)
    ]


def heads(slots: list[list[Candidate]]) -> list[Candidate]:
    return [slot[0] for slot in slots]


def lanes(slots: list[list[Candidate]]) -> Counter[str]:
    return Counter(slot[0].lane for slot in slots)


def test_a_newcomer_gets_a_slot_whatever_the_backlog_ahead_of_it() -> None:
    # 100 webhooks of one tenant, each with a long backlog, all older.
    backlog = [c for i in range(100) for c in due("a", "webhook", f"w{i}", 4)]
    email = due("b", "email", None, 1, start=10_000)

    slots = choose(backlog + email, Load(), Limits(total=128, per_tenant_channel=32))

    assert [email[0]] in slots
    # The noisy tenant's webhooks get their share, one slot per webhook.
    assert Counter(slot[0].tenant_id for slot in slots) == {"a": 32, "b": 1}
    assert max(lanes(slots).values()) == 1


def test_a_tenants_channel_has_its_share_and_its_email_a_lane_of_its_own() -> None:
    backlog = [c for i in range(100) for c in due("a", "webhook", f"w{i}", 4)]
    own_email = due("a", "email", None, 40)
    limits = Limits(total=128, per_tenant_channel=8, per_lane=4, per_slot=1)

    slots = choose(backlog + own_email, Load(), limits)

    assert Counter(slot[0].channel for slot in slots) == {"webhook": 8, "email": 8}
    # E-mail is the deployment's provider: the tenant's share, not a webhook's.
    assert lanes(slots)[own_email[0].lane] == 8


def test_a_slot_takes_a_lanes_longest_waiting_in_order() -> None:
    hook = due("a", "webhook", "w1", 25)

    slots = choose(hook, Load(), Limits(per_lane=2, per_slot=10))

    assert slots == [hook[:10], hook[10:20]]


def test_a_webhook_never_exceeds_its_concurrency_counting_what_is_in_flight() -> None:
    hook = due("a", "webhook", "w1", 10)
    load = Load()
    for candidate in due("a", "webhook", "w1", 3, start=-10):
        load.add(candidate)

    slots = choose(hook, load, Limits(per_lane=4, per_slot=1))

    assert slots == [[hook[0]]]  # the longest waiting
    assert load.lanes[hook[0].lane] == 3  # the load given is not changed


def test_the_least_busy_lanes_go_first() -> None:
    busy, idle = due("a", "sms", None, 4), due("b", "sms", None, 4, start=100)
    load = Load()
    load.add(busy[0])

    slots = choose(busy[1:] + idle, load, Limits(total=4, per_slot=1))  # 3 free

    assert [c.lane for c in heads(slots)] == [idle[0].lane, busy[1].lane, idle[1].lane]


def test_paused_lanes_wait_and_a_trial_goes_alone() -> None:
    held = due("a", "webhook", "w1", 3, admission=Admission.HOLD)
    trial = due("a", "webhook", "w2", 3, admission=Admission.TRIAL)

    slots = choose(held + trial, Load(), Limits())

    assert slots == [[trial[0]]]
    in_flight = Load()
    in_flight.add(trial[0])
    assert choose(trial[1:], in_flight, Limits()) == []


def test_the_load_counts_up_and_down() -> None:
    load = Load()
    (one,) = due("a", "email", None, 1)
    load.add(one)
    assert load.total == 1 and load.groups[("a", "email")] == 1
    load.remove(one)
    assert load.total == 0 and not load.lanes and not load.groups


@pytest.mark.parametrize(
    "field", ["total", "per_tenant_channel", "per_lane", "per_slot"]
)
def test_limits_are_at_least_one(field: str) -> None:
    with pytest.raises(ValueError):
        Limits(**{field: 0})  # type: ignore[arg-type]

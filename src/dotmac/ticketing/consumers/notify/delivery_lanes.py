"""Which due deliveries to send next, fairly across tenants and endpoints.

Deliveries are grouped in *lanes*, one per place a send can be slow: each
webhook is a lane of its own, and each tenant's e-mail and each tenant's
SMS are one lane (they share the deployment's provider). Sends in flight
are capped per webhook, per tenant and channel, and in total, and free
capacity is dealt out round-robin over the lanes, the least busy first and
then the longest waiting. So a lane whose receiver hangs fills its own
few slots and no more, a tenant with a hundred of them fills its tenant's
share and no more, and a lane that was idle gets the next free slot
whatever the others have queued.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dotmac.ticketing.consumers.notify.circuit_breaker import Admission


def lane_of(tenant_id: str, channel: str, webhook_id: str | None) -> str:
    """The lane key, as the ledger's generated ``lane`` column spells it."""
    return f"{tenant_id}|{channel}|{webhook_id or ''}"


@dataclass(frozen=True)
class Limits:
    total: int = 128  # sends in flight per dispatcher
    # One tenant's sends on one channel: its webhooks together, its e-mail
    # (one lane: the deployment's provider), its SMS.
    per_tenant_channel: int = 32
    per_lane: int = 4  # one webhook: an endpoint of its own
    # Deliveries of one lane a slot sends one after the other before it is
    # dealt again: fewer claim passes for a busy lane, the same fairness.
    per_slot: int = 10

    def __post_init__(self) -> None:
        limits = (self.total, self.per_tenant_channel, self.per_lane, self.per_slot)
        if min(limits) < 1:
            raise ValueError("every concurrency limit is at least 1")


@dataclass(frozen=True)
class Candidate:
    """A due delivery, as the claim query found it."""

    key: str
    lane: str
    tenant_id: str
    channel: str
    due: datetime
    admission: Admission = Admission.OPEN
    webhook_id: str | None = None


@dataclass
class Load:
    """The sends in flight of one dispatcher, counted per lane and group."""

    lanes: Counter[str] = field(default_factory=Counter)
    groups: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.lanes.values())

    def add(self, candidate: Candidate) -> None:
        self.lanes[candidate.lane] += 1
        self.groups[(candidate.tenant_id, candidate.channel)] += 1

    def remove(self, candidate: Candidate) -> None:
        self.lanes[candidate.lane] -= 1
        self.groups[(candidate.tenant_id, candidate.channel)] -= 1
        if self.lanes[candidate.lane] <= 0:
            del self.lanes[candidate.lane]
        group = (candidate.tenant_id, candidate.channel)
        if self.groups[group] <= 0:
            del self.groups[group]

    def copy(self) -> Load:
        return Load(Counter(self.lanes), Counter(self.groups))


def lane_capacity(candidate: Candidate, load: Load, limits: Limits) -> int:
    """How many more sends the candidate's lane may have in flight."""
    if candidate.admission is Admission.HOLD:
        return 0
    if candidate.admission is Admission.TRIAL:
        # One trial, and only when nothing else is in flight to it.
        return 1 if load.lanes[candidate.lane] == 0 else 0
    # E-mail and SMS lanes (no endpoint of their own) have their tenant's
    # share of the provider; a webhook has its endpoint's.
    cap = limits.per_lane if candidate.webhook_id else limits.per_tenant_channel
    return cap - load.lanes[candidate.lane]


Slot = list[Candidate]  # one lane's deliveries, to send one after the other


def choose(candidates: Iterable[Candidate], load: Load, limits: Limits) -> list[Slot]:
    """The slots to start now, in the order to start them.

    ``load`` is what is in flight already, a slot counting as one send (it
    is not changed). Round after round, every lane with capacity left
    gives a slot of its longest-waiting candidates (a trial goes alone),
    lanes ordered by how busy they are, then how long their first
    candidate has waited.
    """
    queues: dict[str, list[Candidate]] = {}
    for candidate in sorted(candidates, key=lambda c: (c.due, c.key)):
        queues.setdefault(candidate.lane, []).append(candidate)
    lanes: Sequence[str] = sorted(
        queues, key=lambda lane: (load.lanes[lane], queues[lane][0].due, lane)
    )
    planned = load.copy()
    chosen: list[Slot] = []
    while True:
        took = False
        for lane in lanes:
            queue = queues[lane]
            if not queue or planned.total >= limits.total:
                continue
            head = queue[0]
            group = (head.tenant_id, head.channel)
            if lane_capacity(head, planned, limits) <= 0:
                continue
            if planned.groups[group] >= limits.per_tenant_channel:
                continue
            size = 1 if head.admission is Admission.TRIAL else limits.per_slot
            chosen.append(queue[:size])
            del queue[:size]
            planned.add(head)
            took = True
        if not took:
            return chosen

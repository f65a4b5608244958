"""Bulk jobs against the real database: conflicts, leases, exactly once.

The runner is driven here one job at a time (``BulkRunner.run_once``), on
the test's thread, so each test decides when a job is worked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID

import pytest

from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.schemas.bulk import BulkAction, BulkJobCreate
from dotmac.ticketing.service.bootstrap import Ticketing, initialize_ticketing
from dotmac.ticketing.service.bulk import BulkJobs, BulkRunner
from dotmac.ticketing.service.context import RequestContext
from dotmac.ticketing.service.tickets import CommandResult, TicketService
from dotmac.ticketing.store import bulk_jobs as rows
from dotmac.ticketing.store.bulk_jobs import applying

AGENT = RequestContext(
    tenant_id="t-bulk", user_id="agent-1", roles=frozenset({"agent"})
)


@pytest.fixture
def core(isolated_database_url: str) -> Iterator[Ticketing]:
    ticketing = initialize_ticketing({"database_url": isolated_database_url})
    yield ticketing
    ticketing.close()


def open_tickets(core: Ticketing, count: int) -> list[UUID]:
    return [
        core.tickets.create_ticket(
            AGENT, title=f"Ticket {n}", customer_id="c-1"
        ).ticket.id
        for n in range(count)
    ]


def start(jobs: BulkJobs, ids: list[UUID], action: dict[str, object]) -> UUID:
    request = BulkJobCreate.model_validate({"ids": ids, "action": action})
    job, _ = jobs.start(AGENT, request)
    return job.job_id


def escalations(core: Ticketing, ticket_id: UUID, job_id: UUID) -> int:
    return sum(
        1
        for event in core.app.events.get(ticket_id)
        if type(event).__name__ == "TicketEscalated"
        and getattr(event, "correlation_id", None) == str(job_id)
    )


class RacedOnce:
    """An executor (``service.bulk.ActionExecutor``) that assigns, but another
    writer saves each ticket first once: from another thread (outside the
    item's context), between the load and the save of the first attempt."""

    def __init__(self, tickets: TicketService) -> None:
        self._tickets_service = tickets
        self.raced: set[UUID] = set()

    def handles(self, action: BulkAction) -> bool:
        return action.kind == "assign"

    def check(self, ctx: RequestContext, action: BulkAction) -> None:
        """Any assignment may be asked for (the tickets decide)."""

    def apply(
        self, ctx: RequestContext, ticket_id: UUID, action: BulkAction, *, key: str
    ) -> CommandResult:
        tickets = self._tickets_service

        def decide(ticket: Ticket) -> None:
            if ticket_id not in self.raced:
                self.raced.add(ticket_id)
                other = threading.Thread(
                    target=tickets.add_tags,
                    args=(AGENT, ticket_id),
                    kwargs={"tags": ["raced"]},
                )
                other.start()
                other.join()
            ticket.assign(
                assignee_id="agent-7",
                team=None,
                provenance=ctx.provenance(),
                at=tickets.now(),
            )

        return tickets.execute(ctx, ticket_id, decide)


def test_a_conflict_is_retried_on_the_new_state_and_counted(core: Ticketing) -> None:
    raced = RacedOnce(core.tickets)
    jobs = BulkJobs(core.app, core.read_model, [raced])
    ids = open_tickets(core, 3)
    job_id = start(jobs, ids, {"assign": {"assignee_id": "agent-7"}})

    assert BulkRunner(jobs, concurrency=2).run_once()

    view = jobs.get(AGENT, job_id)
    assert view.job.state == rows.FINISHED
    assert view.counts["conflict_retried"] == 3
    assert view.counts["conflicts"] == 3
    assert {item["outcome"] for item in view.items} == {"conflict_retried"}
    for ticket_id in ids:
        ticket = core.tickets.find(ticket_id)
        assert ticket is not None
        # Both writers' changes: the retry decided on the raced state.
        assert ticket.assignee_id == "agent-7"
        assert ticket.tags == ["raced"]


def test_an_item_applied_before_a_crash_is_not_applied_again(core: Ticketing) -> None:
    jobs = core.bulk
    ids = open_tickets(core, 4)
    job_id = start(jobs, ids, {"escalate": {"reason": "outage", "team": "Tier 2"}})
    executor = jobs.executor_for(
        BulkAction.model_validate({"escalate": {"reason": "outage", "team": "Tier 2"}})
    )
    # The process that had applied item 2 died before anything else: its
    # events and its mark were one commit.
    ctx = RequestContext(
        tenant_id=AGENT.tenant_id,
        user_id=AGENT.user_id,
        roles=AGENT.roles,
        correlation_id=str(job_id),
    )
    with applying(job_id, 2):
        executor.apply(
            ctx,
            ids[1],
            BulkAction.model_validate(
                {"escalate": {"reason": "outage", "team": "Tier 2"}}
            ),
            key=f"{job_id}:2",
        )
    with core.app.transaction() as cur:
        assert [p for p, _ in rows.pending_items(cur, job_id, 10)] == [1, 3, 4]

    assert BulkRunner(jobs).run_once()

    view = jobs.get(AGENT, job_id)
    assert view.counts["done"] == 4 and view.counts["changed"] == 4
    for ticket_id in ids:
        assert escalations(core, ticket_id, job_id) == 1


def test_a_job_another_runner_holds_waits_for_its_lease(core: Ticketing) -> None:
    jobs = core.bulk
    ids = open_tickets(core, 2)
    job_id = start(jobs, ids, {"add_tags": {"tags": ["vip"]}})
    with core.app.transaction() as cur:
        held = rows.claim_job(cur, "a-runner-that-died", lease_seconds=600)
    assert held is not None and held.job_id == job_id

    runner = BulkRunner(jobs)
    assert not runner.run_once()  # leased to the other one

    with core.app.transaction() as cur:  # its lease runs out
        cur.execute(
            "UPDATE bulk_jobs SET lease_until = now() - interval '1 second'"
            " WHERE job_id = %s",
            (job_id,),
        )
    assert runner.run_once()
    assert jobs.get(AGENT, job_id).job.state == rows.FINISHED
    assert not runner.run_once()  # nothing left
    for ticket_id in ids:
        ticket = core.tickets.find(ticket_id)
        assert ticket is not None and ticket.tags == ["vip"]


def test_a_stopping_runner_gives_its_job_back_unfinished(core: Ticketing) -> None:
    jobs = core.bulk
    ids = open_tickets(core, 6)
    job_id = start(jobs, ids, {"add_tags": {"tags": ["vip"]}})
    runner = BulkRunner(jobs, concurrency=1, chunk=2)
    original = runner._apply
    calls = []

    def apply_then_stop(*args: object) -> object:
        calls.append(args)
        runner._stopping.set()  # SIGTERM arrives during the first chunk
        return original(*args)  # type: ignore[arg-type]

    runner._apply = apply_then_stop  # type: ignore[method-assign]
    assert runner.run_once()

    view = jobs.get(AGENT, job_id)
    assert view.job.state == rows.RUNNING
    assert view.counts["done"] == 2 and view.counts["pending"] == 4
    with core.app.transaction() as cur:
        cur.execute("SELECT lease_owner FROM bulk_jobs WHERE job_id = %s", (job_id,))
        assert cur.fetchone()["lease_owner"] is None  # free at once, not leased
    assert BulkRunner(jobs).run_once()
    assert jobs.get(AGENT, job_id).counts["done"] == 6

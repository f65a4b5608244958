"""The technical-support workflow (see ``domain.builtin_workflows``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from dotmac.ticketing.domain.acknowledgment import instant, readable
from dotmac.ticketing.domain.diagnostics import (
    DiagnosticsChoice,
    choose_question,
    questions_of,
)
from dotmac.ticketing.domain.enums import ACTIVE_STATUSES, TicketStatus
from dotmac.ticketing.domain.escalation_change import escalation_change, holder
from dotmac.ticketing.domain.limits import COMMENT_MAX
from dotmac.ticketing.domain.provenance import AGENT_ROLES
from dotmac.ticketing.domain.rules import matches
from dotmac.ticketing.domain.workflow import (
    IntegrationNotConfigured,
    TicketAction,
    TicketWorkflow,
    WorkflowResult,
    WorkflowStep,
    handed_to_a_person,
)
from dotmac.ticketing.domain.workflows.common import (
    _AUTOMATION,
    _COMPLEX_PRIORITIES,
    _CUSTOMER,
    _HOOK_RETRY,
    _REASON_CHARS,
    DIAGNOSTICS,
    _after,
    _comment,
    _comments,
    _done,
    _facts,
    _iso,
    _last_comment_id,
    _last_index,
    _number,
    _option_number,
    _option_text,
    _public_by,
    _result,
    _text,
    _waiting,
)

# == technical support ===============================================================


def _kind_of(
    question: str, choice: DiagnosticsChoice, options: Mapping[str, Any]
) -> str | None:
    """The kind a question on the ticket was asked as: the kind chosen now
    when its question is that one (a tenant may word kinds alike), else the
    first kind worded so."""
    if choice.question == question:
        return choice.kind
    worded = questions_of(options)
    return next((kind for kind, text in worded.items() if text == question), None)


def _joined(comments: Sequence[Mapping[str, Any]]) -> str:
    return "\n\n".join(_text(c, "body").strip() for c in comments)[:COMMENT_MAX]


class TechnicalSupportWorkflow(TicketWorkflow):
    """Diagnose with the customer, analyse, escalate, solve, verify, close."""

    def __init__(self) -> None:
        super().__init__(
            workflow_type="technical_support",
            steps=[
                WorkflowStep(
                    "collect_diagnostics",
                    "Ask the customer for diagnostic information (unless given)"
                    " and wait for the answer.",
                ),
                WorkflowStep(
                    "analyze",
                    "Have the diagnostics system analyse the problem; without"
                    " one, a person judges it.",
                    retry=_HOOK_RETRY,
                ),
                WorkflowStep(
                    "escalate_complex",
                    "Escalate a complex problem to the team of the matching"
                    " escalation rule.",
                ),
                WorkflowStep(
                    "provide_solution",
                    "Wait for the solution: the resolution, or an agent's public"
                    " reply marked as the solution.",
                ),
                WorkflowStep(
                    "verify_resolution",
                    "Wait for the resolution; close after the quiet period, or"
                    " go back to the solution when the customer reopens.",
                ),
            ],
        )

    async def step_collect_diagnostics(self) -> WorkflowResult:
        ticket = self.context.ticket
        options = self.context.options
        comments = _comments(ticket)
        # Our own question, found on the ticket: only completed steps'
        # results are in the context, not what an earlier (waiting) run did.
        # Any kind's: a ticket that changed since (a priority raised) is
        # not asked a second question.
        ours = set(questions_of(options).values())
        asked = _last_index(
            comments,
            lambda c: _public_by(c, (_AUTOMATION,)) and _text(c, "body") in ours,
        )
        if asked is not None:
            replies = [c for c in comments[asked + 1 :] if _public_by(c, (_CUSTOMER,))]
            if replies:
                return _done(
                    "collect_diagnostics",
                    f"the customer answered the diagnostic question in"
                    f" {len(replies)} comment(s)",
                    {
                        "asked": True,
                        "source": "customer_reply",
                        "question_comment_id": comments[asked].get("id"),
                        "comment_ids": [c.get("id") for c in replies],
                        "diagnostics": _joined(replies),
                        "last_comment_id": _last_comment_id(ticket),
                    },
                )
        given = [c for c in comments if _public_by(c, (_CUSTOMER,))]
        description = _text(ticket, "description").strip()
        min_length = int(_option_number(options, "diagnostics_min_length", 80))
        if asked is None and (given or len(description) >= min_length):
            if given:
                source, text = "customer_comments", _joined(given)
                why = f"the customer already added {len(given)} comment(s)"
            else:
                source, text = "description", description[:COMMENT_MAX]
                why = (
                    f"the description has {len(description)} characters"
                    f" (at least {min_length})"
                )
            return _done(
                "collect_diagnostics",
                f"not asked: {why}",
                {
                    "asked": False,
                    "source": source,
                    "why": why,
                    "comment_ids": [c.get("id") for c in given],
                    "diagnostics": text,
                    "last_comment_id": _last_comment_id(ticket),
                },
            )
        choice = choose_question(
            priority=_text(ticket, "priority"),
            category=_text(ticket, "category"),
            title=_text(ticket, "title"),
            description=description,
            options=options,
        )
        if choice.skipped:
            # Also when asked before the ticket became one the tenant skips
            # (a priority raised to critical): nobody waits for the answer.
            return _done(
                "collect_diagnostics",
                ("not asked" if asked is None else "no longer waited for")
                + f": {choice.why}",
                {
                    "asked": asked is not None,
                    "source": "skipped",
                    "why": choice.why,
                    "comment_ids": [c.get("id") for c in given],
                    "diagnostics": description[:COMMENT_MAX],
                    "last_comment_id": _last_comment_id(ticket),
                },
            )
        if asked is not None:
            # The same wait on every run: the question as it was asked.
            question = _text(comments[asked], "body")
            return _waiting(
                "collect_diagnostics",
                "waiting for the customer's diagnostic information",
                {"question": question, "kind": _kind_of(question, choice, options)},
            )
        return _waiting(
            "collect_diagnostics",
            "waiting for the customer's diagnostic information",
            {"question": choice.question, "kind": choice.kind},
            actions=[_comment(str(choice.question))],
        )

    async def step_analyze(self) -> WorkflowResult:
        ticket = self.context.ticket
        diagnostics = _result(self.context.results, "collect_diagnostics")
        priority = _text(ticket, "priority")
        by_priority = priority in _COMPLEX_PRIORITIES
        priority_why = (
            f"priority {priority} is "
            + ("" if by_priority else "not ")
            + f"one of {', '.join(_COMPLEX_PRIORITIES)}"
        )
        payload = {
            "ticket_id": _text(ticket, "id"),
            "title": _text(ticket, "title"),
            "description": _text(ticket, "description"),
            "diagnostics": _text(diagnostics, "diagnostics"),
            "priority": priority,
            "category": _text(ticket, "category"),
        }
        try:
            answer = await self.context.integrations.call(
                DIAGNOSTICS,
                payload,
                idempotency_key=self.context.idempotency_key("analyze"),
            )
        except IntegrationNotConfigured:
            return handed_to_a_person(
                "analyze",
                DIAGNOSTICS,
                "read the diagnostics the customer gave and judge whether the"
                " problem is complex (complex problems are escalated)",
                {"complex": by_priority, "summary": "what the problem is"},
            )
        verdict = answer.get("complex")
        if isinstance(verdict, bool):
            complex_problem = verdict
            why = "the diagnostics system judged it " + (
                "complex" if verdict else "not complex"
            )
        else:
            complex_problem = by_priority
            why = f"the diagnostics answer did not say; {priority_why}"
        summary = answer.get("summary")
        return _done(
            "analyze",
            ("complex" if complex_problem else "not complex")
            + (f": {summary}"[:_REASON_CHARS] if isinstance(summary, str) else ""),
            {
                "analysis": answer,
                "complex": complex_problem,
                "summary": summary if isinstance(summary, str) else None,
                "why": why,
            },
        )

    async def step_escalate_complex(self) -> WorkflowResult:
        ticket = self.context.ticket
        analysis = _result(self.context.results, "analyze")
        if analysis.get("complex") is not True:
            return _done(
                "escalate_complex",
                "not escalated: the problem is not complex",
                {"escalated": False, "why": "the analysis did not find it complex"},
            )
        status = _text(ticket, "status")
        if status not in ACTIVE_STATUSES:
            return _done(
                "escalate_complex",
                f"not escalated: the ticket is {status}",
                {"escalated": False, "why": f"the ticket is {status}, not active"},
            )
        level = int(ticket.get("escalation_level") or 0)
        facts = _facts(ticket)
        rules = self.context.config.escalation_rules
        # A rule at or below the current level has had its say already.
        candidates = [r for r in rules if r.level > level]
        rule = next((r for r in candidates if matches(r.conditions, facts)), None)
        if rule is not None:
            team: str | None = rule.escalate_to_team
            chosen_by = f"escalation rule {rule.name!r}"
        else:
            team = _option_text(self.context.options, "escalation_team", "") or None
            chosen_by = (
                "the workflow option escalation_team"
                if team
                else "no escalation rule or option names a team"
            )
        summary = analysis.get("summary") or analysis.get("why") or "see the analysis"
        reason = f"complex problem: {summary}"[:_REASON_CHARS]
        change = escalation_change(
            current_team=_text(ticket, "assigned_team") or None,
            current_assignee=_text(ticket, "assignee_id") or None,
            team=team,
        )
        if not change.changes:
            # Escalating to whoever holds the ticket would mail "Escalated"
            # to them and count an escalation that moved nothing: the ticket
            # would record none anyway (domain.escalation_change).
            kept = holder(change.team, change.assignee_id)
            return _done(
                "escalate_complex",
                f"not escalated: kept by the current team, {kept} ({chosen_by})",
                {
                    "escalated": False,
                    "kept_by": kept,
                    "team": change.team,
                    "rule": None if rule is None else rule.name,
                    "chosen_by": chosen_by,
                    "reason": reason,
                    "why": f"the escalation would change nothing: {change.why}",
                },
            )
        fields: dict[str, Any] = {"reason": reason}
        if team:
            fields["team"] = team
        if rule is not None:
            # The escalation is the rule's, at its level: recorded as such,
            # the timers do not escalate again by the same rule later.
            fields["rule"] = rule.name
            fields["level"] = rule.level
        return _done(
            "escalate_complex",
            f"escalated to team {team} ({chosen_by})",
            {
                "escalated": True,
                "team": team,
                "rule": None if rule is None else rule.name,
                "chosen_by": chosen_by,
                "reason": reason,
            },
            actions=[TicketAction("escalate", fields)],
        )

    async def step_provide_solution(self) -> WorkflowResult:
        ticket = self.context.ticket
        results = self.context.results
        reopen_count = int(ticket.get("reopen_count") or 0)
        # Answers count from when the diagnostics were in, or, back here
        # after a reopen, from when the reopen was seen: else the answer that
        # was rejected would complete the step again, and again.
        since = _result(results, "collect_diagnostics").get("last_comment_id")
        if self.context.visit > 1:
            reopened = _result(results, "verify_resolution")
            since = reopened.get("last_comment_id", since)
        status = _text(ticket, "status")
        if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
            return _done(
                "provide_solution",
                f"the ticket is {status}",
                {
                    "solved_by": status,
                    "solution_comment_id": None,
                    "reopen_count": reopen_count,
                },
            )
        # Only an answer marked as the solution: an agent's question (a plain
        # reply asking for more) does not solve anything.
        answers = [
            c
            for c in _after(_comments(ticket), since)
            if _public_by(c, AGENT_ROLES) and c.get("solution") is True
        ]
        if answers:
            answer = answers[-1]
            return _done(
                "provide_solution",
                f"{answer.get('author_role')} {answer.get('author_id')} posted the"
                " solution",
                {
                    "solved_by": "comment",
                    "solution_comment_id": answer.get("id"),
                    "author_id": answer.get("author_id"),
                    "reopen_count": reopen_count,
                },
            )
        return _waiting(
            "provide_solution",
            "waiting for an agent to resolve the ticket or post a public reply"
            ' marked as the solution ("solution": true)',
            {"after_comment_id": since},
        )

    async def step_verify_resolution(self) -> WorkflowResult:
        ticket = self.context.ticket
        status = _text(ticket, "status")
        if status == TicketStatus.CLOSED:
            return _done(
                "verify_resolution",
                "the ticket was closed",
                {"closed": True, "closed_by": "someone else"},
            )
        if status == TicketStatus.RESOLVED:
            return self._quiet_period(ticket)
        reopen_count = int(ticket.get("reopen_count") or 0)
        # The reopen count when the solution came: a count grown since means
        # the customer reopened. Without it (a person completed the solution
        # step with other data) the step just waits for the next resolution.
        baseline = _number(
            _result(self.context.results, "provide_solution").get("reopen_count")
        )
        if baseline is not None and reopen_count > baseline:
            return _done(
                "verify_resolution",
                "the customer reopened the ticket: back to the solution",
                {
                    "reopened": True,
                    "reopen_count": reopen_count,
                    "last_comment_id": _last_comment_id(ticket),
                    "noticed_at": _iso(self.context.now),
                },
                next_step="provide_solution",
            )
        return _waiting(
            "verify_resolution",
            "waiting for the ticket to be resolved",
            {"waiting_for": "resolution"},
        )

    def _quiet_period(self, ticket: Mapping[str, Any]) -> WorkflowResult:
        hours = _option_number(self.context.options, "auto_close_after_hours", 72.0)
        resolved_at = instant(ticket.get("resolved_at"))
        if resolved_at is None:
            return _waiting(
                "verify_resolution",
                "waiting: the resolution time is unknown, so no auto-close",
                {"resolved_at": None},
            )
        close_at = resolved_at + timedelta(hours=hours)
        if self.context.now >= close_at:
            return _done(
                "verify_resolution",
                f"closed: no reopen within {hours:g} h of the resolution",
                {
                    "closed": True,
                    "resolved_at": _iso(resolved_at),
                    "quiet_hours": hours,
                },
                actions=[TicketAction("close")],
            )
        return _waiting(
            "verify_resolution",
            f"resolved; waiting for the customer, closes at {readable(close_at)}"
            " unless reopened",
            {"resolved_at": _iso(resolved_at), "close_at": _iso(close_at)},
            wake_at=close_at,
        )

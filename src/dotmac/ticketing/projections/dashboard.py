"""The analytics dashboard: a tenant's figures over a time range.

Definitions (each figure is for one tenant; ``team`` filters on the
ticket's current ``assigned_team``, and on the escalation's team):

- *In range* means created in ``[start, end)``. Totals, wall-clock
  durations, the reopen rate and the per-agent table count the tickets
  created in range; SLA and escalation figures count events in range.
- ``per_day``: every UTC day that ``[start, end)`` touches, whole days,
  zeros included. Without a team filter it comes from ``daily_metrics``,
  which counts events: ``resolved`` counts resolutions, so a ticket
  resolved, reopened and resolved again counts on both days. With a team
  filter it comes from ``tickets``, which keeps only the latest state:
  ``resolved`` counts tickets by their latest resolution time, and a ticket
  reopened and not yet resolved again does not count. ``created`` means the
  same in both. ``per_day_source`` says which was used.
- ``open_backlog``: tickets in an active status (new, open, in_progress,
  pending, on_hold) right now, whatever their creation time.
- Durations are wall-clock minutes from creation to the first public agent
  reply, and to the latest resolution; tickets without one are left out.
  Median and p90 interpolate (``percentile_cont``).
- SLA figures come from the SLA events, by the time they happened (not by
  creation), like escalations:

  - ``sla_response``, ``sla_resolution``, ``sla_next_reply``: the clocks
    of that target that stopped in ``[start, end)``: ``met`` (goal reached
    by the due time), ``breached`` (reached late, or stopped after a
    breach), ``stopped`` (ended without its goal: a ticket resolved
    without a public reply, or merged away); ``pct`` = met / (met +
    breached), null when none is decided. A reopen restarts the
    resolution clock, so a ticket resolved twice counts twice.
  - ``*_business_minutes``: business minutes (the tenant's calendar,
    pauses left out) the clocks stopped in range ran until their goal:
    the first public agent reply, the resolution, the next reply. Clocks
    that stopped without their goal are left out.
  - ``breaches``, ``warnings``: ``SLABreached`` and ``SLAWarning`` events
    in range (a clock warned again after its due time moved later counts
    again).
  - ``open_breached``, ``open_at_risk``: active tickets now whose running
    clocks are breached, or warned and none breached (``sla_state``).
- EscalationsRead: escalation events in ``[start, end)`` (not by creation),
  in total, per team escalated to, per level, and how many a rule made
  (``automatic``; with or without approval). Requests for approval:
  made in range, approved and rejected in range, and ``pending`` now (on
  active tickets). With ``team``, the team escalated (or to be escalated)
  to.
- Reopen rate: tickets reopened at least once / tickets resolved at least
  once (a reopen needs a resolution first), as a percentage.
- Agents: per current assignee, tickets assigned, how many of those are
  resolved (or resolved then closed), and their median resolution time.
- SatisfactionRead (CSAT): the customers' ratings given in ``[start, end)``
  (by the time of the rating, not of the ticket; a ticket rated again
  counts once, with its latest rating): how many, their mean (1-5), and
  CSAT, the share rated 4 or 5 in percent; in total, per current team
  and per current assignee (tickets without one are in the total only).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from dotmac.ticketing.domain.enums import TicketCategory, TicketPriority, TicketStatus
from dotmac.ticketing.domain.sla import FIRST_RESPONSE, NEXT_REPLY, RESOLUTION
from dotmac.ticketing.projections.measures import (
    FIRST_RESPONSE_MINUTES,
    IS_OPEN,
    IS_SATISFIED,
    RESOLUTION_MINUTES,
    RESOLVED_AT_LEAST_ONCE,
)
from dotmac.ticketing.projections.read_model import ReadModel
from dotmac.ticketing.schemas.analytics import (
    AgentRowRead,
    AgentSatisfactionRead,
    DashboardRead,
    DayCountRead,
    DurationStatsRead,
    EscalationRequestsRead,
    EscalationsRead,
    LevelCountRead,
    ReopenRateRead,
    SatisfactionRead,
    SlaComplianceRead,
    TeamCountRead,
    TeamSatisfactionRead,
)

# The per-day series has a row per day: bound it so one request cannot ask
# for centuries.
MAX_RANGE_DAYS = 366


E = TypeVar("E", bound=StrEnum)


# -- the queries -----------------------------------------------------------

IN_RANGE = """
    tenant_id = %(tenant)s
    AND created_at >= %(start)s AND created_at < %(end)s
    AND (%(team)s::text IS NULL OR assigned_team = %(team)s)
"""

# One pass, summed per dimension in Python: a third faster than GROUPING
# SETS on a big range, and at most statuses × priorities × categories ×
# teams rows.
TOTALS_SQL = f"""
SELECT status, priority, category, assigned_team, count(*) AS n
FROM tickets
WHERE {IN_RANGE}
GROUP BY status, priority, category, assigned_team
"""

FIGURES_SQL = f"""
WITH in_range AS (
    SELECT {FIRST_RESPONSE_MINUTES} AS fr,
           {RESOLUTION_MINUTES} AS res,
           reopen_count > 0 AS reopened,
           {RESOLVED_AT_LEAST_ONCE} AS resolved_once
    FROM tickets
    WHERE {IN_RANGE}
), open_now AS (
    SELECT count(*) AS backlog,
           count(*) FILTER (WHERE sla_state = 'breached') AS breached,
           count(*) FILTER (WHERE sla_state = 'warning') AS at_risk
    FROM tickets
    WHERE tenant_id = %(tenant)s AND {IS_OPEN}
      AND (%(team)s::text IS NULL OR assigned_team = %(team)s)
)
SELECT count(*) AS created,
       count(fr) AS fr_count,
       avg(fr) AS fr_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY fr) AS fr_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY fr) AS fr_p90,
       count(res) AS res_count,
       avg(res) AS res_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY res) AS res_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY res) AS res_p90,
       count(*) FILTER (WHERE reopened) AS reopened,
       count(*) FILTER (WHERE resolved_once) AS resolved_once,
       (SELECT backlog FROM open_now) AS open_backlog,
       (SELECT breached FROM open_now) AS open_breached,
       (SELECT at_risk FROM open_now) AS open_at_risk
FROM in_range
"""

# The ticket's current team, for the SLA figures' team filter.
OF_TEAM = """(%(team)s::text IS NULL OR EXISTS (
    SELECT 1 FROM tickets t
    WHERE t.ticket_id = {alias}.ticket_id AND t.assigned_team = %(team)s))"""

SLA_CLOCKS_SQL = f"""
SELECT c.target,
       count(*) FILTER (WHERE c.outcome = 'met') AS met,
       count(*) FILTER (WHERE c.outcome = 'breached') AS breached,
       count(*) FILTER (WHERE c.outcome = 'stopped') AS stopped,
       count(c.business_minutes) FILTER (WHERE c.goal_at IS NOT NULL) AS bm_count,
       avg(c.business_minutes) FILTER (WHERE c.goal_at IS NOT NULL) AS bm_mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY c.business_minutes)
           FILTER (WHERE c.goal_at IS NOT NULL) AS bm_median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY c.business_minutes)
           FILTER (WHERE c.goal_at IS NOT NULL) AS bm_p90
FROM sla_clocks c
WHERE c.tenant_id = %(tenant)s
  AND c.stopped_at >= %(start)s AND c.stopped_at < %(end)s
  AND {OF_TEAM.format(alias="c")}
GROUP BY c.target
"""

SLA_ALERTS_SQL = f"""
SELECT count(*) FILTER (WHERE a.kind = 'warning') AS warnings,
       count(*) FILTER (WHERE a.kind = 'breach') AS breaches
FROM sla_alerts a
WHERE a.tenant_id = %(tenant)s AND a.at >= %(start)s AND a.at < %(end)s
  AND {OF_TEAM.format(alias="a")}
"""

PER_DAY_FROM_METRICS_SQL = """
SELECT d.day::date AS day, coalesce(m.created, 0) AS created,
       coalesce(m.resolved, 0) AS resolved
FROM generate_series(%(first_day)s::timestamp, %(last_day)s::timestamp, '1 day')
     AS d(day)
LEFT JOIN daily_metrics m ON m.tenant_id = %(tenant)s AND m.day = d.day::date
ORDER BY d.day
"""

PER_DAY_FROM_TICKETS_SQL = """
WITH created AS (
    SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM tickets
    WHERE tenant_id = %(tenant)s AND assigned_team = %(team)s
      AND created_at >= %(days_start)s AND created_at < %(days_end)s
    GROUP BY 1
), resolved AS (
    SELECT (resolved_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n
    FROM tickets
    WHERE tenant_id = %(tenant)s AND assigned_team = %(team)s
      AND resolved_at >= %(days_start)s AND resolved_at < %(days_end)s
    GROUP BY 1
)
SELECT d.day::date AS day, coalesce(c.n, 0) AS created, coalesce(r.n, 0) AS resolved
FROM generate_series(%(first_day)s::timestamp, %(last_day)s::timestamp, '1 day')
     AS d(day)
LEFT JOIN created c ON c.day = d.day::date
LEFT JOIN resolved r ON r.day = d.day::date
ORDER BY d.day
"""

ESCALATIONS_SQL = """
SELECT GROUPING(team) = 1 AND GROUPING(level) = 1 AS is_total,
       GROUPING(team) = 0 AS by_team,
       team, level, count(*) AS n, count(rule) AS automatic
FROM escalations
WHERE tenant_id = %(tenant)s
  AND escalated_at >= %(start)s AND escalated_at < %(end)s
  AND (%(team)s::text IS NULL OR team = %(team)s)
GROUP BY GROUPING SETS ((), (team), (level))
"""

ESCALATION_REQUESTS_SQL = f"""
SELECT count(*) FILTER (WHERE r.requested_at >= %(start)s
                          AND r.requested_at < %(end)s) AS requested,
       count(*) FILTER (WHERE r.state = 'approved' AND r.decided_at >= %(start)s
                          AND r.decided_at < %(end)s) AS approved,
       count(*) FILTER (WHERE r.state = 'rejected' AND r.decided_at >= %(start)s
                          AND r.decided_at < %(end)s) AS rejected,
       count(*) FILTER (WHERE r.state = 'pending' AND EXISTS (
           SELECT 1 FROM tickets t
           WHERE t.ticket_id = r.ticket_id AND {IS_OPEN}
       )) AS pending
FROM escalation_requests r
WHERE r.tenant_id = %(tenant)s
  AND (%(team)s::text IS NULL OR r.team = %(team)s)
  AND (r.state = 'pending' OR r.requested_at >= %(start)s
       OR r.decided_at >= %(start)s)
"""

AGENTS_SQL = f"""
SELECT assignee_id,
       count(*) AS assigned,
       count(resolved_at) AS resolved,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY {RESOLUTION_MINUTES})
           AS median_resolution_minutes
FROM tickets
WHERE {IN_RANGE} AND assignee_id IS NOT NULL
GROUP BY assignee_id
ORDER BY assignee_id
"""

SATISFACTION_SQL = f"""
SELECT GROUPING(assigned_team) = 1 AND GROUPING(assignee_id) = 1 AS is_total,
       assigned_team, assignee_id,
       count(*) AS responses,
       avg(satisfaction_rating) AS average,
       count(*) FILTER (WHERE {IS_SATISFIED}) AS satisfied
FROM tickets
WHERE tenant_id = %(tenant)s
  AND satisfaction_rated_at >= %(start)s AND satisfaction_rated_at < %(end)s
  AND (%(team)s::text IS NULL OR assigned_team = %(team)s)
GROUP BY GROUPING SETS ((), (assigned_team), (assignee_id))
"""

# -- assembling ------------------------------------------------------------

DIMENSIONS = (
    ("status", "status"),
    ("priority", "priority"),
    ("category", "category"),
    ("team", "assigned_team"),
)


def dashboard(
    read_model: ReadModel,
    *,
    tenant_id: str,
    start: datetime,
    end: datetime,
    team: str | None = None,
) -> DashboardRead:
    """The dashboard figures; raises ValueError for an unusable range."""
    _check_range(start, end)
    first_day = start.astimezone(UTC).date()
    # ``end`` is exclusive: the last day is the one holding the last instant.
    last_day = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    params = {
        "tenant": tenant_id,
        "start": start,
        "end": end,
        "team": team,
        "first_day": first_day,
        "last_day": last_day,
        "days_start": datetime.combine(first_day, time(), UTC),
        "days_end": datetime.combine(last_day + timedelta(days=1), time(), UTC),
    }
    per_day_sql = PER_DAY_FROM_METRICS_SQL if team is None else PER_DAY_FROM_TICKETS_SQL
    (
        totals,
        (figures,),
        days,
        clocks,
        (alerts,),
        escalations,
        (requests,),
        agents,
        ratings,
    ) = _read_snapshot(
        read_model,
        [
            TOTALS_SQL,
            FIGURES_SQL,
            per_day_sql,
            SLA_CLOCKS_SQL,
            SLA_ALERTS_SQL,
            ESCALATIONS_SQL,
            ESCALATION_REQUESTS_SQL,
            AGENTS_SQL,
            SATISFACTION_SQL,
        ],
        params,
    )
    by_target = {row["target"]: row for row in clocks}
    by = _totals(totals)
    return DashboardRead(
        tenant_id=tenant_id,
        start=start,
        end=end,
        team=team,
        created=figures["created"],
        by_status=_with_zeros(TicketStatus, by["status"]),
        by_priority=_with_zeros(TicketPriority, by["priority"]),
        by_category=_with_zeros(TicketCategory, by["category"]),
        by_team=_team_counts(by["team"]),
        per_day=[
            DayCountRead(day=r["day"], created=r["created"], resolved=r["resolved"])
            for r in days
        ],
        per_day_source="daily_metrics" if team is None else "tickets",
        open_backlog=figures["open_backlog"],
        first_response_minutes=_durations(figures, "fr"),
        resolution_minutes=_durations(figures, "res"),
        sla_response=_compliance(by_target.get(FIRST_RESPONSE)),
        sla_resolution=_compliance(by_target.get(RESOLUTION)),
        sla_next_reply=_compliance(by_target.get(NEXT_REPLY)),
        first_response_business_minutes=_clock_minutes(by_target.get(FIRST_RESPONSE)),
        resolution_business_minutes=_clock_minutes(by_target.get(RESOLUTION)),
        next_reply_business_minutes=_clock_minutes(by_target.get(NEXT_REPLY)),
        breaches=alerts["breaches"],
        warnings=alerts["warnings"],
        open_breached=figures["open_breached"],
        open_at_risk=figures["open_at_risk"],
        escalations=_escalations(escalations),
        escalation_requests=EscalationRequestsRead(
            requested=requests["requested"],
            approved=requests["approved"],
            rejected=requests["rejected"],
            pending=requests["pending"],
        ),
        reopen_rate=ReopenRateRead(
            reopened=figures["reopened"],
            resolved=figures["resolved_once"],
            pct=_pct(figures["reopened"], figures["resolved_once"]),
        ),
        agents=[
            AgentRowRead(
                assignee_id=r["assignee_id"],
                assigned=r["assigned"],
                resolved=r["resolved"],
                median_resolution_minutes=_minutes(r["median_resolution_minutes"]),
            )
            for r in agents
        ],
        satisfaction=_satisfaction(ratings),
    )


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        # A naive time would be read in the database session's time zone.
        raise ValueError("start and end need a time zone")
    if end <= start:
        raise ValueError("end must be after start")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise ValueError(f"the range is limited to {MAX_RANGE_DAYS} days")


def _read_snapshot(
    read_model: ReadModel, queries: list[str], params: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    """Run the queries in one snapshot, so the figures agree with each other.

    Like :meth:`ReadModel.run`, a query that hits a build swapped out and
    dropped meanwhile is retried once on the new one.
    """
    for attempt in (1, 2):
        try:
            with read_model.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                # These scans are small enough that compiling them costs more
                # than it saves (JIT added ~0.7 s at 200k tickets).
                cur.execute("SET LOCAL jit = off")
                results = []
                for query in queries:
                    cur.execute(query, params)
                    results.append(list(cur.fetchall()))
                return results
        except Exception as error:
            if attempt == 2 or "does not exist" not in str(error):
                raise
            read_model.active(refresh=True)
    raise AssertionError("unreachable")


def _totals(rows: list[dict[str, Any]]) -> dict[str, dict[str | None, int]]:
    by: dict[str, dict[str | None, int]] = {
        "status": {},
        "priority": {},
        "category": {},
        "team": {},
    }
    for row in rows:
        for dimension, column in DIMENSIONS:
            counts = by[dimension]
            counts[row[column]] = counts.get(row[column], 0) + row["n"]
    return by


def _with_zeros(enum: type[E], counts: dict[str | None, int]) -> dict[E, int]:
    """Every value of the enum, in its order, so charts keep their axes."""
    return {member: counts.get(member.value, 0) for member in enum}


def _team_counts(counts: dict[str | None, int]) -> list[TeamCountRead]:
    """Largest first; ties by name; no team last among its equals."""
    ordered = sorted(
        counts.items(), key=lambda item: (-item[1], item[0] is None, item[0] or "")
    )
    return [TeamCountRead(team=team, count=n) for team, n in ordered]


def _durations(figures: dict[str, Any], key: str) -> DurationStatsRead:
    return DurationStatsRead(
        count=figures[f"{key}_count"],
        mean=_minutes(figures[f"{key}_mean"]),
        median=_minutes(figures[f"{key}_median"]),
        p90=_minutes(figures[f"{key}_p90"]),
    )


def _compliance(row: dict[str, Any] | None) -> SlaComplianceRead:
    if row is None:
        return SlaComplianceRead(met=0, breached=0, stopped=0, pct=None)
    met, breached = row["met"], row["breached"]
    return SlaComplianceRead(
        met=met,
        breached=breached,
        stopped=row["stopped"],
        pct=_pct(met, met + breached),
    )


def _clock_minutes(row: dict[str, Any] | None) -> DurationStatsRead:
    if row is None:
        return DurationStatsRead(count=0, mean=None, median=None, p90=None)
    return _durations(row, "bm")


def _escalations(rows: list[dict[str, Any]]) -> EscalationsRead:
    total = next((r for r in rows if r["is_total"]), None)
    by_team = {r["team"]: r["n"] for r in rows if r["by_team"]}
    by_level = sorted(
        (
            LevelCountRead(level=r["level"], count=r["n"])
            for r in rows
            if r["level"] is not None
        ),
        key=lambda c: c.level,
    )
    return EscalationsRead(
        total=total["n"] if total else 0,
        by_team=_team_counts(by_team),
        by_level=by_level,
        automatic=total["automatic"] if total else 0,
    )


def _satisfaction(rows: list[dict[str, Any]]) -> SatisfactionRead:
    def score(row: dict[str, Any] | None) -> dict[str, Any]:
        if row is None or not row["responses"]:
            return {"responses": 0, "average": None, "csat_pct": None}
        return {
            "responses": row["responses"],
            "average": round(float(row["average"]), 2),
            "csat_pct": _pct(row["satisfied"], row["responses"]),
        }

    total = next((r for r in rows if r["is_total"]), None)
    teams = [r for r in rows if not r["is_total"] and r["assigned_team"] is not None]
    agents = [r for r in rows if not r["is_total"] and r["assignee_id"] is not None]
    return SatisfactionRead(
        **score(total),
        by_team=[
            TeamSatisfactionRead(team=r["assigned_team"], **score(r))
            for r in sorted(teams, key=lambda r: r["assigned_team"])
        ],
        by_agent=[
            AgentSatisfactionRead(assignee_id=r["assignee_id"], **score(r))
            for r in sorted(agents, key=lambda r: r["assignee_id"])
        ],
    )


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)

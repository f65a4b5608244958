"""SQL expressions for the measures the dashboard and the analysts' views share.

One definition of each measure, written over the columns of the ``tickets``
read table (unqualified), so a manager's dashboard and an analyst's query
over ``analytics.*`` can never disagree about what "resolution time" or
"SLA met" means.
"""

from dotmac.ticketing.domain.enums import ACTIVE_STATUSES

# The statuses that make up the open backlog, as an SQL list literal. The
# values come from the domain enum (never from a caller), so inlining them
# is safe and keeps the expressions usable inside view definitions.
ACTIVE_STATUS_LIST = ", ".join(
    f"'{status.value}'" for status in sorted(ACTIVE_STATUSES)
)

IS_OPEN = f"(status IN ({ACTIVE_STATUS_LIST}))"

# Wall-clock minutes from creation. Resolution uses the latest resolution:
# a reopen clears ``resolved_at`` until the ticket is resolved again, so a
# reopened, still open ticket has no resolution time.
# (date_part, unlike extract, stays in float8: a third faster on big scans.)
FIRST_RESPONSE_MINUTES = "(date_part('epoch', first_response_at - created_at) / 60)"
RESOLUTION_MINUTES = "(date_part('epoch', resolved_at - created_at) / 60)"


def outcome(prefix: str) -> str:
    """A target's outcome on the tickets row (``prefix``: ``sla_response``...).

    ``met`` or ``breached`` once its clock stopped (as ``SLAStopped`` said;
    ``stopped`` when it ended without its goal, say a ticket resolved
    without a public reply), ``breached`` once a timer recorded the breach
    of a running clock, ``pending`` while it runs; NULL without a clock.
    From the events, not the database clock: every reader sees the same.
    """
    return f"""(CASE
    WHEN {prefix}_started_at IS NULL THEN NULL
    WHEN {prefix}_stopped_at IS NOT NULL THEN {prefix}_outcome
    WHEN {prefix}_breached_at IS NOT NULL THEN 'breached'
    ELSE 'pending'
END)"""


def business_minutes_to_goal(prefix: str) -> str:
    """Business minutes the target's clock ran until its goal (else NULL).

    Only a clock that stopped because its goal was reached counts: the
    first public agent reply, the resolution.
    """
    return (
        f"(CASE WHEN {prefix}_goal_at IS NOT NULL THEN {prefix}_business_minutes END)"
    )


RESPONSE_OUTCOME = outcome("sla_response")
RESOLUTION_OUTCOME = outcome("sla_resolution")
NEXT_REPLY_OUTCOME = outcome("sla_next_reply")

FIRST_RESPONSE_BUSINESS_MINUTES = business_minutes_to_goal("sla_response")
RESOLUTION_BUSINESS_MINUTES = business_minutes_to_goal("sla_resolution")

# A reopen needs a resolution first, and clears ``resolved_at``: a ticket
# was resolved at least once when it is resolved now or was ever reopened.
RESOLVED_AT_LEAST_ONCE = "(resolved_at IS NOT NULL OR reopen_count > 0)"

# Customer satisfaction (CSAT), as Zendesk and most desks report it: the
# share of ratings that are good, 4 or 5 on the 1-5 scale, in percent.
SATISFIED_RATING_MIN = 4
IS_SATISFIED = f"(satisfaction_rating >= {SATISFIED_RATING_MIN})"

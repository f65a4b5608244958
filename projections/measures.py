"""SQL expressions for the measures the dashboard and the analysts' views share.

One definition of each measure, written over the columns of the ``tickets``
read table (unqualified), so a manager's dashboard and an analyst's query
over ``analytics.*`` can never disagree about what "resolution time" or
"SLA met" means.
"""

from domain.enums import ACTIVE_STATUSES

# The statuses that make up the open backlog, as an SQL list literal. The
# values come from the domain enum (never from a caller), so inlining them
# is safe and keeps the expressions usable inside view definitions.
ACTIVE_STATUS_LIST = ", ".join(
    f"'{status.value}'" for status in sorted(ACTIVE_STATUSES)
)

IS_OPEN = f"(status IN ({ACTIVE_STATUS_LIST}))"

# Wall-clock minutes from creation. Resolution uses the latest resolution:
# a reopen clears ``resolved_at`` until the ticket is resolved again, so a
# reopened, still open ticket has no resolution time. (Business minutes
# arrive with the SLA calendars.)
# (date_part, unlike extract, stays in float8: a third faster on big scans.)
FIRST_RESPONSE_MINUTES = "(date_part('epoch', first_response_at - created_at) / 60)"
RESOLUTION_MINUTES = "(date_part('epoch', resolved_at - created_at) / 60)"

# SLA outcome of a ticket with a due time: 'met' when the response (or
# resolution) came at or before it, 'breached' when it came later or has
# not come and the due time has passed, 'pending' otherwise; NULL when the
# ticket has no due time. A ticket merged away (closed without a
# resolution) stops its resolution clock when it is closed.
RESPONSE_OUTCOME = """(CASE
    WHEN sla_response_due_at IS NULL THEN NULL
    WHEN first_response_at IS NOT NULL THEN
        CASE WHEN first_response_at <= sla_response_due_at
             THEN 'met' ELSE 'breached' END
    WHEN now() > sla_response_due_at THEN 'breached'
    ELSE 'pending'
END)"""

RESOLUTION_OUTCOME = """(CASE
    WHEN sla_resolution_due_at IS NULL THEN NULL
    WHEN coalesce(resolved_at, closed_at) IS NOT NULL THEN
        CASE WHEN coalesce(resolved_at, closed_at) <= sla_resolution_due_at
             THEN 'met' ELSE 'breached' END
    WHEN now() > sla_resolution_due_at THEN 'breached'
    ELSE 'pending'
END)"""

# A reopen needs a resolution first, and clears ``resolved_at``: a ticket
# was resolved at least once when it is resolved now or was ever reopened.
RESOLVED_AT_LEAST_ONCE = "(resolved_at IS NOT NULL OR reopen_count > 0)"

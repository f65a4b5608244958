"""What a tenant that configured nothing gets: the defaults, as plain data.

Part of the domain's vocabulary (with its enums and limits): the settings
schemas state them as their defaults, and the domain applies them.
"""

from __future__ import annotations

#: The share of a target after which a warning is due, unless configured.
DEFAULT_WARNING_PERCENT = 80

#: Default (first response, resolution) targets in minutes, per priority.
DEFAULT_SLA_MINUTES: dict[str, tuple[int, int]] = {
    "critical": (15, 240),
    "urgent": (60, 480),
    "high": (240, 1440),
    "normal": (1440, 4320),
    "low": (2880, 10080),
}


#: How the tenant's e-mail words dates and times unless configured (a
#: CLDR locale, e.g. ``en_GB`` or ``de``).
DEFAULT_LOCALE = "en"

#: E-mails to one person about one ticket within this many seconds of the
#: first go out as one (a reply then a resolution: one mail); 0: each alone.
DEFAULT_COALESCE_SECONDS = 30


#: The workflow type run for each category unless configured; every other
#: category runs :data:`DEFAULT_WORKFLOW` (issue #6).
DEFAULT_WORKFLOW_BY_CATEGORY: dict[str, str] = {
    "technical_support": "technical_support",
    "billing": "billing",
}
DEFAULT_WORKFLOW = "customer_support"

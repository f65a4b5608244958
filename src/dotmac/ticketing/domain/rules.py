"""Condition matching: does a ticket fit a rule's conditions?

Assignment, escalation and SLA policy narrowing all describe the tickets
they apply to in one vocabulary, the ``conditions`` of the settings
document (``schemas.settings.Conditions``)::

    {"category": ["billing"], "priority": ["high", "urgent"],
     "channel": ["email"], "tags": ["vpn"], "customer_tier": ["gold"],
     "custom_fields": {"region": ["eu", "uk"]},
     "text": {"contains": ["refund"], "regex": [r"order\\s+#\\d+"]}}

Every given condition must hold; each list matches any of its values; no
conditions at all match every ticket. The documents are validated and
normalised before they are stored, so here a lone value is only tolerated
(as a list of one) and an unknown key is a programming error.

Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["CONDITION_KEYS", "TicketFacts", "first_match", "matches"]


@dataclass(frozen=True)
class TicketFacts:
    """What rules may look at: the ticket as it is when a rule is applied."""

    category: str
    priority: str
    channel: str
    tags: tuple[str, ...]
    custom_fields: Mapping[str, Any]
    title: str
    description: str

    @property
    def customer_tier(self) -> str | None:
        """The ``customer_tier`` custom field as text, None when unset.

        Tiers are configured as names, so a numeric tier (``2``) is matched
        by the name ``"2"``.
        """
        tier = self.custom_fields.get("customer_tier")
        return None if tier is None else str(tier)


def matches(conditions: Mapping[str, Any] | None, facts: TicketFacts) -> bool:
    """True when every given condition holds for the ticket."""
    if not conditions:
        return True
    for key, expected in conditions.items():
        check = _CHECKS.get(key)
        if check is None:
            raise ValueError(f"unknown condition {key!r}")
        if not check(expected, facts):
            return False
    return True


def first_match(
    rules: Sequence[Mapping[str, Any]], facts: TicketFacts
) -> Mapping[str, Any] | None:
    """The highest-``priority`` rule whose conditions match, None if none does.

    Equal priorities keep document order (``sorted`` is stable), so an admin
    can read the winner off the settings page from the top down.
    """
    ranked = sorted(rules, key=lambda rule: -int(rule.get("priority", 0)))
    for rule in ranked:
        if matches(rule.get("conditions"), facts):
            return rule
    return None


# -- the conditions ------------------------------------------------------------


def _any_of(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else [value]


def _category(expected: Any, facts: TicketFacts) -> bool:
    return facts.category in _any_of(expected)


def _priority(expected: Any, facts: TicketFacts) -> bool:
    return facts.priority in _any_of(expected)


def _channel(expected: Any, facts: TicketFacts) -> bool:
    return facts.channel in _any_of(expected)


def _tags(expected: Any, facts: TicketFacts) -> bool:
    # Tickets store their tags lower-cased; a rule typed "VPN" still means vpn.
    wanted = {str(tag).lower() for tag in _any_of(expected)}
    return any(tag.lower() in wanted for tag in facts.tags)


def _customer_tier(expected: Any, facts: TicketFacts) -> bool:
    tier = facts.customer_tier
    return tier is not None and tier in [str(t) for t in _any_of(expected)]


def _same_value(a: Any, b: Any) -> bool:
    """Equal in kind and value: ``5 != "5"`` and ``True != 1``.

    Python's ``==`` says ``True == 1``, and a loose compare would say
    ``5 == "5"``; a custom field is JSON, where those are different values.
    Integers and floats are one kind (JSON has a single number type, so a
    ticket's ``5.0`` is the rule's ``5``).
    """
    return _kind(a) == _kind(b) and a == b


def _kind(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _custom_fields(expected: Any, facts: TicketFacts) -> bool:
    # A field the ticket does not have matches no value, not even null.
    for key, values in expected.items():
        if key not in facts.custom_fields:
            return False
        actual = facts.custom_fields[key]
        if not any(_same_value(actual, value) for value in _any_of(values)):
            return False
    return True


def _text(expected: Any, facts: TicketFacts) -> bool:
    unknown = set(expected) - {"contains", "regex"}
    if unknown:
        raise ValueError(f"unknown text condition {sorted(unknown)[0]!r}")
    text = f"{facts.title}\n{facts.description}"
    folded = text.casefold()
    contains = _any_of(expected.get("contains") or [])
    patterns = _any_of(expected.get("regex") or [])
    if not contains and not patterns:
        return True
    return any(needle.casefold() in folded for needle in contains) or any(
        _compiled(pattern).search(text) for pattern in patterns
    )


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Rules are evaluated on every ticket create and every escalation check;
    # the same few patterns come back each time.
    return re.compile(pattern, re.IGNORECASE)


_CHECKS: dict[str, Callable[[Any, TicketFacts], bool]] = {
    "category": _category,
    "priority": _priority,
    "channel": _channel,
    "tags": _tags,
    "customer_tier": _customer_tier,
    "custom_fields": _custom_fields,
    "text": _text,
}

#: The condition keys a rule may use.
CONDITION_KEYS: frozenset[str] = frozenset(_CHECKS)

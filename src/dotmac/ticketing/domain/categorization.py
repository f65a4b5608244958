"""Auto-categorisation: the category a ticket's own words suggest.

The rules are the ``categorization_rules`` of the tenant's configuration
(``schemas.tenant_config.CategorizationRule``), read in their typed form
(``domain.tenant_config.CategorizationRule``)::

    {"name": "billing_words", "category": "billing",
     "keywords": ["invoice", "refund", "credit card"],
     "regex": [r"order\\s+#?\\d{6,}"], "confidence": 0.9}

A rule matches when any of its keywords or any of its regexes does:

- a keyword matches as a whole word or phrase, ignoring case, in the title
  or the description: ``refund`` matches "Refund!" and "my refund." but not
  "refunded" or "prerefund". Whole words, not substrings, because short
  keywords otherwise match inside unrelated words ("bill" in "billion",
  "app" in "happy", "vpn" in "vpnc"); list the forms you mean ("refund",
  "refunds"). The words of a phrase may be separated by any white space.
- a regex is searched, ignoring case, in the title and description joined
  by a newline: the same text and flags as a ``text`` condition of the
  assignment and escalation rules (``domain.rules``).

The best matching rule wins: the highest ``confidence``, then the most
keywords and regexes matched, then the first in the list. The result says
which rule won and what in the text made it match, so a person can see why
a ticket was categorised and override it.

Pure: standard library and the typed configuration only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from dotmac.ticketing.domain.tenant_config import (
    DEFAULT_CONFIDENCE,
    CategorizationRule,
)

__all__ = ["DEFAULT_CONFIDENCE", "Categorization", "candidates", "categorize"]


@dataclass(frozen=True)
class Categorization:
    """A suggested category and why: the rule and what of it matched."""

    category: str
    confidence: float
    rule: str
    matched_keywords: tuple[str, ...] = ()
    matched_patterns: tuple[str, ...] = ()

    @property
    def match_count(self) -> int:
        """How many of the rule's keywords and regexes matched."""
        return len(self.matched_keywords) + len(self.matched_patterns)

    def explanation(self) -> str:
        """One sentence for people: ``rule 'x' suggests billing (...): ...``."""
        found = []
        if self.matched_keywords:
            found.append("keywords " + _quoted(self.matched_keywords))
        if self.matched_patterns:
            found.append("regex " + _quoted(self.matched_patterns))
        return (
            f"rule {self.rule!r} suggests {self.category} "
            f"(confidence {self.confidence:g}): matched {'; '.join(found)}"
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for events and API answers."""
        return {
            "category": self.category,
            "confidence": self.confidence,
            "rule": self.rule,
            "matched_keywords": list(self.matched_keywords),
            "matched_patterns": list(self.matched_patterns),
        }


def categorize(
    rules: Sequence[CategorizationRule], title: str, description: str
) -> Categorization | None:
    """The best matching rule's category, None when no rule matches."""
    ranked = candidates(rules, title, description)
    return ranked[0] if ranked else None


def candidates(
    rules: Sequence[CategorizationRule], title: str, description: str
) -> list[Categorization]:
    """Every matching rule's suggestion, best first (see the module's ranking)."""
    found = [
        result
        for rule in rules
        if (result := _evaluate(rule, title, description)) is not None
    ]
    # sorted is stable: equal confidence and matches keep document order.
    return sorted(found, key=lambda c: (-c.confidence, -c.match_count))


def _evaluate(
    rule: CategorizationRule, title: str, description: str
) -> Categorization | None:
    folded = (title.casefold(), description.casefold())
    keywords = tuple(
        keyword
        for keyword in rule.keywords
        if any(_keyword_pattern(keyword).search(text) for text in folded)
    )
    text = f"{title}\n{description}"
    patterns = tuple(
        pattern for pattern in rule.regex if _compiled(pattern).search(text)
    )
    if not keywords and not patterns:
        return None
    return Categorization(
        category=rule.category,
        confidence=rule.confidence,
        rule=rule.name,
        matched_keywords=keywords,
        matched_patterns=patterns,
    )


def _quoted(texts: Sequence[str]) -> str:
    # Not repr(): a regex reads better without doubled backslashes.
    return ", ".join(f"'{text}'" for text in texts)


@lru_cache(maxsize=4096)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    words = keyword.casefold().split()
    if not words:
        return re.compile(r"(?!)")  # matches nothing
    phrase = r"\s+".join(re.escape(word) for word in words)
    # Lookarounds rather than \b: a keyword may begin or end with a symbol
    # ("c++", "#refund"), where \b would demand a word character next to it.
    return re.compile(rf"(?<!\w){phrase}(?!\w)")


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    # The same flags as domain.rules' text conditions.
    return re.compile(pattern, re.IGNORECASE)

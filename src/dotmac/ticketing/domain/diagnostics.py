"""Which diagnostic question a technical-support ticket gets, or none.

A question has to fit the ticket. Someone whose production site is down
needs to be asked what is affected, since when and what changed, not which
firmware their phone runs; someone whose router drops the line needs to be
asked exactly that. So the question is one of three kinds:

``outage``
    a service, site or system is down or unreachable for people, or the
    ticket is ``critical``: what is affected and for how many users, when
    it started, what changed shortly before, which errors or alerts show.
``device``
    a device, its system or an app on it misbehaves: the device and
    operating system, the app or firmware version, the exact error, the
    steps, when it started.
``general``
    anything else: the exact error, the steps, what was expected, when it
    started.

The kind is chosen from the priority (``critical`` is an outage) and from
whole words and phrases of the title and description (:data:`OUTAGE_WORDS`,
then :data:`DEVICE_WORDS`); the choice says which words made it, so a
person can see why. A tenant words each kind's question
(``diagnostics_questions.<kind>`` in the technical-support options; the
older ``diagnostics_question`` words all three) and lists priorities and
categories whose tickets are not asked at all (``skip_diagnostics_for``).

Pure: standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "DEFAULT_QUESTIONS",
    "DEVICE",
    "DEVICE_WORDS",
    "GENERAL",
    "OUTAGE",
    "OUTAGE_PRIORITIES",
    "OUTAGE_WORDS",
    "QUESTION_KINDS",
    "DiagnosticsChoice",
    "choose_question",
    "questions_of",
]

OUTAGE = "outage"
DEVICE = "device"
GENERAL = "general"
QUESTION_KINDS = (OUTAGE, DEVICE, GENERAL)

DEFAULT_QUESTIONS: Mapping[str, str] = {
    OUTAGE: (
        "To help us restore the service quickly, please reply with: what is"
        " affected (which sites, services or systems, and how many users),"
        " when it started, whether anything changed shortly before (a"
        " deployment, a configuration change, maintenance), and any error"
        " messages or monitoring alerts you see."
    ),
    DEVICE: (
        "To help us find the cause, please reply with: the device and operating"
        " system you use, the version of the app or firmware, the exact error"
        " message (a screenshot helps), the steps that lead to the problem, and"
        " when it started."
    ),
    GENERAL: (
        "To help us find the cause, please reply with: the exact error message"
        " (a screenshot helps), the steps that lead to the problem, what you"
        " expected to happen instead, and when it started."
    ),
}

#: Priorities whose tickets are outages whatever their words.
OUTAGE_PRIORITIES = frozenset({"critical"})

#: Words and phrases (whole, any case) that make a ticket an outage.
OUTAGE_WORDS: tuple[str, ...] = (
    "down",
    "outage",
    "offline",
    "unreachable",
    "not reachable",
    "unavailable",
    "not responding",
    "no service",
    "production",
    "all users",
    "everyone",
    "nobody can",
    "no one can",
    "502",
    "503",
    "504",
)

#: Words and phrases that make a ticket a device problem (after outages).
DEVICE_WORDS: tuple[str, ...] = (
    "device",
    "devices",
    "hardware",
    "firmware",
    "phone",
    "smartphone",
    "iphone",
    "android",
    "ios",
    "tablet",
    "ipad",
    "laptop",
    "computer",
    "pc",
    "mac",
    "macos",
    "windows",
    "linux",
    "printer",
    "router",
    "modem",
    "app",
    "application",
    "client",
    "browser",
    "driver",
    "vpn",
    "bluetooth",
    "wifi",
    "wi-fi",
)


@dataclass(frozen=True)
class DiagnosticsChoice:
    """The question to ask (None: skipped), of which kind, and why."""

    kind: str | None
    question: str | None
    why: str

    @property
    def skipped(self) -> bool:
        return self.question is None


def questions_of(options: Mapping[str, Any]) -> dict[str, str]:
    """Each kind's question as the tenant words it, else the default.

    ``diagnostics_questions.<kind>`` wins; the older single
    ``diagnostics_question`` words every kind it does not.
    """
    worded = options.get("diagnostics_questions")
    per_kind = worded if isinstance(worded, Mapping) else {}
    legacy = _text(options.get("diagnostics_question"))
    return {
        kind: _text(per_kind.get(kind)) or legacy or DEFAULT_QUESTIONS[kind]
        for kind in QUESTION_KINDS
    }


def choose_question(
    *,
    priority: str,
    category: str,
    title: str,
    description: str,
    options: Mapping[str, Any],
) -> DiagnosticsChoice:
    """The diagnostic question this ticket gets under the tenant's options."""
    skip = options.get("skip_diagnostics_for")
    skip = skip if isinstance(skip, Mapping) else {}
    if priority in _listed(skip.get("priorities")):
        return DiagnosticsChoice(
            None, None, f"the tenant skips the question for priority {priority}"
        )
    if category in _listed(skip.get("categories")):
        return DiagnosticsChoice(
            None, None, f"the tenant skips the question for category {category}"
        )
    questions = questions_of(options)
    if priority in OUTAGE_PRIORITIES:
        return DiagnosticsChoice(
            OUTAGE, questions[OUTAGE], f"priority {priority}: asked as an outage"
        )
    text = f"{title}\n{description}"
    for kind, words in ((OUTAGE, OUTAGE_WORDS), (DEVICE, DEVICE_WORDS)):
        found = [word for word in words if _pattern(word).search(text)]
        if found:
            shown = ", ".join(repr(word) for word in found[:3])
            why = f"{kind}: the ticket says {shown}"
            return DiagnosticsChoice(kind, questions[kind], why)
    why = "general: the ticket names no outage and no device"
    return DiagnosticsChoice(GENERAL, questions[GENERAL], why)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _listed(value: Any) -> Collection[str]:
    return {str(v) for v in value} if isinstance(value, list) else set()


@lru_cache(maxsize=256)
def _pattern(phrase: str) -> re.Pattern[str]:
    """A whole word or phrase, any case, its words apart by any white space."""
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)

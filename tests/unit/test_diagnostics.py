"""Which diagnostic question fits a ticket (``domain.diagnostics``)."""

from __future__ import annotations

from typing import Any

import pytest

from dotmac.ticketing.domain.diagnostics import (
    DEFAULT_QUESTIONS,
    DEVICE,
    GENERAL,
    OUTAGE,
    choose_question,
    questions_of,
)


def choose(
    title: str,
    description: str = "",
    *,
    priority: str = "normal",
    category: str = "technical_support",
    **options: Any,
) -> Any:
    return choose_question(
        priority=priority,
        category=category,
        title=title,
        description=description,
        options=options,
    )


@pytest.mark.parametrize(
    ("title", "description", "kind", "why"),
    [
        ("Production site down", "", OUTAGE, "'down', 'production'"),
        ("Checkout fails", "The API answers 503 since noon", OUTAGE, "'503'"),
        ("Portal not reachable", "for all users", OUTAGE, "'not reachable'"),
        ("Router drops the line", "", DEVICE, "'router'"),
        ("App crashes on Android 14", "", DEVICE, "'android', 'app'"),
        ("Export has wrong totals", "The CSV sums differ.", GENERAL, ""),
        # Whole words only: "download" is no outage, "happy" no app.
        ("Download is slow", "happy otherwise", GENERAL, ""),
    ],
)
def test_the_words_of_the_ticket_choose_the_kind(
    title: str, description: str, kind: str, why: str
) -> None:
    choice = choose(title, description)
    assert (choice.kind, choice.question) == (kind, DEFAULT_QUESTIONS[kind])
    assert why in choice.why


def test_a_critical_ticket_is_an_outage_whatever_it_says() -> None:
    choice = choose("Printer jams", priority="critical")
    assert choice.kind == OUTAGE
    assert choice.why == "priority critical: asked as an outage"


def test_the_outage_question_asks_for_impact_not_the_device() -> None:
    outage = DEFAULT_QUESTIONS[OUTAGE]
    for asked in ("affected", "how many users", "when it started", "changed"):
        assert asked in outage
    assert "firmware" not in outage and "device" not in outage
    assert "firmware" in DEFAULT_QUESTIONS[DEVICE]


def test_skipped_priorities_and_categories_get_no_question() -> None:
    skip = {"priorities": ["critical", "urgent"], "categories": ["account"]}
    by_priority = choose("Site down", priority="urgent", skip_diagnostics_for=skip)
    assert by_priority.skipped and by_priority.kind is None
    assert by_priority.why == "the tenant skips the question for priority urgent"
    by_category = choose("Router", category="account", skip_diagnostics_for=skip)
    assert by_category.skipped
    assert by_category.why == "the tenant skips the question for category account"
    assert not choose("Router", skip_diagnostics_for=skip).skipped


def test_the_tenant_words_each_kind_and_the_older_option_the_rest() -> None:
    assert questions_of({}) == dict(DEFAULT_QUESTIONS)
    worded = questions_of(
        {
            "diagnostics_questions": {"device": "  Which model?  ", "outage": ""},
            "diagnostics_question": "Tell us more.",
        }
    )
    assert worded == {
        OUTAGE: "Tell us more.",
        DEVICE: "Which model?",
        GENERAL: "Tell us more.",
    }
    # Options of the wrong shape take the defaults (as every option does).
    assert questions_of({"diagnostics_questions": ["x"]}) == dict(DEFAULT_QUESTIONS)
    assert not choose("Router", skip_diagnostics_for="critical").skipped

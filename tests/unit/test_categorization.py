"""Auto-categorisation: whole-word keywords, regexes, ranking, explanations."""

from __future__ import annotations

from typing import Any

import pytest

from dotmac.ticketing.domain.categorization import (
    Categorization,
    candidates,
    categorize,
)
from dotmac.ticketing.domain.tenant_config import CategorizationRule, parse
from dotmac.ticketing.schemas.tenant_config import TenantSettingsDocument


def rule(name: str, category: str, **fields: Any) -> CategorizationRule:
    written = {"name": name, "category": category, **fields}
    (parsed,) = parse({"categorization_rules": [written]}).categorization_rules
    return parsed


BILLING = rule(
    "billing_words",
    "billing",
    keywords=["invoice", "refund", "credit card"],
    regex=[r"order\s+#?\d{6,}"],
    confidence=0.9,
)
TECHNICAL = rule(
    "technical_words",
    "technical_support",
    keywords=["error", "crash", "vpn", "c++"],
    confidence=0.7,
)


def test_no_rules_or_no_match_suggests_nothing() -> None:
    assert categorize([], "Invoice", "") is None
    assert categorize([BILLING, TECHNICAL], "Hello", "How are you?") is None


def test_a_keyword_match_names_the_rule_and_the_keyword() -> None:
    result = categorize([BILLING], "Wrong INVOICE", "")
    assert result == Categorization(
        category="billing",
        confidence=0.9,
        rule="billing_words",
        matched_keywords=("invoice",),
    )


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("Refund please", True),
        ("I want my refund.", True),
        ("refund!", True),
        ("(refund)", True),
        ("REFUND", True),
        ("refunded already", False),
        ("prerefund", False),
        ("refund_id 7", False),
        ("refunds", False),
    ],
)
def test_keywords_match_whole_words_only(text: str, matched: bool) -> None:
    rules = [rule("r", "billing", keywords=["refund"])]
    assert (categorize(rules, text, "") is not None) is matched


def test_a_phrase_matches_across_any_white_space_but_not_inside_words() -> None:
    rules = [rule("r", "billing", keywords=["credit card"])]
    assert categorize(rules, "", "my Credit\n  Card was charged twice")
    assert categorize(rules, "", "creditcard") is None
    assert categorize(rules, "", "credit cards") is None


def test_keywords_with_symbols_and_case_folding() -> None:
    rules = [rule("r", "technical_support", keywords=["c++", "straße"])]
    assert categorize(rules, "The C++ build fails", "")
    assert categorize(rules, "c++11 build fails", "") is None
    assert categorize(rules, "", "Lieferung an die STRASSE")


def test_a_keyword_does_not_span_title_and_description() -> None:
    rules = [rule("r", "billing", keywords=["credit card"])]
    assert categorize(rules, "About my credit", "card was charged") is None


def test_regexes_are_searched_case_insensitively_in_title_and_description() -> None:
    result = categorize([BILLING], "Question", "About ORDER #1234567 from May")
    assert result is not None
    assert result.matched_patterns == (r"order\s+#?\d{6,}",)
    assert result.matched_keywords == ()
    # Like a text condition: title and description joined by a newline.
    spanning = [rule("r", "billing", regex=[r"question\nabout"])]
    assert categorize(spanning, "Question", "About it")


def test_the_highest_confidence_wins_over_more_matches() -> None:
    text = "VPN error after crash"
    result = categorize([TECHNICAL, BILLING], text, "refund")
    assert result is not None
    assert (result.rule, result.confidence) == ("billing_words", 0.9)


def test_equal_confidence_goes_to_the_most_matches() -> None:
    one = rule("one", "billing", keywords=["invoice"], confidence=0.8)
    two = rule("two", "account", keywords=["invoice", "login"], regex=["pass"])
    result = categorize([one, two], "Invoice login", "password reset")
    assert result is not None
    assert result.rule == "two"
    assert result.match_count == 3
    assert result.matched_keywords == ("invoice", "login")
    assert result.matched_patterns == ("pass",)


def test_a_full_tie_goes_to_the_first_rule_listed() -> None:
    first = rule("first", "billing", keywords=["invoice"])
    second = rule("second", "account", keywords=["invoice"])
    assert categorize([first, second], "invoice", "") == Categorization(
        "billing", 0.8, "first", ("invoice",)
    )
    assert categorize([second, first], "invoice", "") == Categorization(
        "account", 0.8, "second", ("invoice",)
    )


def test_candidates_lists_every_matching_rule_best_first() -> None:
    low = rule("low", "general", keywords=["help"], confidence=0.1)
    ranked = candidates([low, TECHNICAL, BILLING], "help: refund after crash", "")
    assert [c.rule for c in ranked] == ["billing_words", "technical_words", "low"]
    assert categorize([low, TECHNICAL, BILLING], "help", "") == ranked[-1]


def test_the_result_explains_itself() -> None:
    result = categorize([BILLING], "Refund for order 1234567", "invoice attached")
    assert result is not None
    assert result.explanation() == (
        "rule 'billing_words' suggests billing (confidence 0.9): matched "
        "keywords 'invoice', 'refund'; regex 'order\\s+#?\\d{6,}'"
    )
    assert result.as_dict() == {
        "category": "billing",
        "confidence": 0.9,
        "rule": "billing_words",
        "matched_keywords": ["invoice", "refund"],
        "matched_patterns": [r"order\s+#?\d{6,}"],
    }


def test_lone_values_and_a_missing_confidence_are_tolerated() -> None:
    result = categorize([rule("r", "billing", keywords="refund")], "refund", "")
    assert result == Categorization("billing", 0.8, "r", ("refund",))


def test_rules_from_a_validated_settings_document() -> None:
    document = TenantSettingsDocument.model_validate(
        {
            "categorization_rules": [
                {"name": "vpn", "category": "technical_support", "keywords": "VPN"},
                {"name": "money", "category": "billing", "regex": "charged \\d+"},
            ]
        }
    ).document()
    rules = parse(document).categorization_rules
    result = categorize(rules, "Charged 30 twice", "and my vpn is down")
    assert result is not None
    # Both match once at the default confidence: the first listed wins.
    assert (result.rule, result.category, result.confidence) == (
        "vpn",
        "technical_support",
        0.8,
    )

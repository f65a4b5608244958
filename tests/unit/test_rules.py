"""Condition matching: each condition kind, their conjunction, rule order."""

import string
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dotmac.ticketing.domain.rules import (
    CONDITION_KEYS,
    TicketFacts,
    first_match,
    matches,
)
from dotmac.ticketing.schemas.tenant_config import Conditions


def facts(**changes: Any) -> TicketFacts:
    base = TicketFacts(
        category="technical_support",
        priority="high",
        channel="email",
        tags=("vpn", "outage"),
        custom_fields={"customer_tier": "gold", "region": "eu", "seats": 5},
        title="VPN drops every hour",
        description="Since Monday the tunnel to Order #4711 resets.",
    )
    return replace(base, **changes)


# -- empty conditions ------------------------------------------------------------


@pytest.mark.parametrize("conditions", [None, {}])
def test_no_conditions_match_every_ticket(conditions: Any) -> None:
    assert matches(conditions, facts())
    assert matches(
        conditions, facts(tags=(), custom_fields={}, title="", priority="low")
    )


def test_unknown_condition_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown condition 'severity'"):
        matches({"severity": ["high"]}, facts())


def test_unknown_text_condition_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown text condition 'glob'"):
        matches({"text": {"glob": ["*vpn*"]}}, facts())


def test_condition_keys_are_the_settings_vocabulary() -> None:
    # The settings schema refuses any other key, so the two must agree.
    assert sorted(CONDITION_KEYS) == sorted(Conditions.model_fields)


# -- any-of lists ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "hit", "miss"),
    [
        ("category", "technical_support", "billing"),
        ("priority", "high", "low"),
        ("channel", "email", "phone"),
    ],
)
def test_enum_conditions_match_any_listed_value(key: str, hit: str, miss: str) -> None:
    assert matches({key: [miss, hit]}, facts())
    assert not matches({key: [miss]}, facts())


@pytest.mark.parametrize(
    ("key", "hit", "miss"),
    [
        ("category", "technical_support", "billing"),
        ("priority", "high", "low"),
        ("channel", "email", "phone"),
        ("tags", "vpn", "printer"),
        ("customer_tier", "gold", "silver"),
    ],
)
def test_a_lone_value_is_a_list_of_one(key: str, hit: str, miss: str) -> None:
    assert matches({key: hit}, facts())
    assert not matches({key: miss}, facts())


def test_all_given_conditions_must_hold() -> None:
    both = {"category": ["technical_support"], "priority": ["high"]}
    assert matches(both, facts())
    assert not matches(both, facts(priority="normal"))
    assert not matches(both, facts(category="billing"))


# -- tags ------------------------------------------------------------------------


def test_tags_match_when_the_ticket_has_any_listed_tag() -> None:
    assert matches({"tags": ["printer", "outage"]}, facts())
    assert not matches({"tags": ["printer", "billing"]}, facts())


def test_tags_compare_lower_case() -> None:
    assert matches({"tags": ["VPN"]}, facts())


def test_tags_never_match_a_ticket_without_tags() -> None:
    assert not matches({"tags": ["vpn"]}, facts(tags=()))


# -- customer tier -------------------------------------------------------------------


def test_customer_tier_reads_the_custom_field() -> None:
    assert facts().customer_tier == "gold"
    assert matches({"customer_tier": ["platinum", "gold"]}, facts())
    assert not matches({"customer_tier": ["platinum"]}, facts())


def test_customer_tier_unset_or_null_matches_nothing() -> None:
    assert facts(custom_fields={}).customer_tier is None
    assert facts(custom_fields={"customer_tier": None}).customer_tier is None
    assert not matches({"customer_tier": ["gold"]}, facts(custom_fields={}))
    assert not matches({"customer_tier": ["None"]}, facts(custom_fields={}))


def test_a_numeric_tier_is_matched_by_its_name() -> None:
    numeric = facts(custom_fields={"customer_tier": 2})
    assert numeric.customer_tier == "2"
    assert matches({"customer_tier": ["2"]}, numeric)


# -- custom fields ------------------------------------------------------------------


def test_custom_field_matches_any_listed_value() -> None:
    assert matches({"custom_fields": {"region": ["uk", "eu"]}}, facts())
    assert not matches({"custom_fields": {"region": ["us"]}}, facts())


def test_every_listed_custom_field_must_match() -> None:
    conditions = {"custom_fields": {"region": ["eu"], "seats": [5]}}
    assert matches(conditions, facts())
    assert not matches(conditions, facts(custom_fields={"region": "eu", "seats": 6}))


def test_a_missing_custom_field_matches_no_value_not_even_null() -> None:
    assert not matches({"custom_fields": {"plan": ["pro"]}}, facts())
    assert not matches({"custom_fields": {"plan": [None]}}, facts())
    assert matches(
        {"custom_fields": {"plan": [None]}}, facts(custom_fields={"plan": None})
    )


@pytest.mark.parametrize(
    ("actual", "wanted", "expected"),
    [
        (5, 5, True),
        (5, "5", False),
        ("5", 5, False),
        (True, True, True),
        (True, 1, False),
        (1, True, False),
        (False, 0, False),
        (0, False, False),
        (None, "", False),
        ("", None, False),
        (None, False, False),
        (5.0, 5, True),  # JSON has one number type
        (2.5, 2.5, True),
        ("EU", "eu", False),  # values compare exactly, unlike tags
    ],
)
def test_custom_fields_compare_kind_and_value(
    actual: Any, wanted: Any, expected: bool
) -> None:
    ticket = facts(custom_fields={"field": actual})
    assert matches({"custom_fields": {"field": [wanted]}}, ticket) is expected


def test_a_lone_custom_field_value_is_a_list_of_one() -> None:
    assert matches({"custom_fields": {"region": "eu"}}, facts())


# -- text -------------------------------------------------------------------------


def test_text_contains_is_case_insensitive_over_title_and_description() -> None:
    assert matches({"text": {"contains": ["vpn DROPS"]}}, facts())  # title
    assert matches({"text": {"contains": ["THE TUNNEL"]}}, facts())  # description
    assert not matches({"text": {"contains": ["printer"]}}, facts())


def test_text_contains_any_of_the_substrings() -> None:
    assert matches({"text": {"contains": ["printer", "tunnel"]}}, facts())


def test_text_contains_sees_title_and_description_as_separate_lines() -> None:
    ticket = facts(title="out", description="age")
    assert not matches({"text": {"contains": ["outage"]}}, ticket)
    assert matches({"text": {"contains": ["out\nage"]}}, ticket)


def test_text_regex_searches_ignoring_case() -> None:
    assert matches({"text": {"regex": [r"order\s+#\d+"]}}, facts())
    assert matches({"text": {"regex": [r"^since monday"]}}, facts()) is False
    assert matches({"text": {"regex": [r"(?m)^since monday"]}}, facts())
    assert not matches({"text": {"regex": [r"invoice \d+"]}}, facts())


def test_text_matches_when_either_contains_or_regex_matches() -> None:
    assert matches({"text": {"contains": ["printer"], "regex": [r"#\d{4}"]}}, facts())
    assert matches({"text": {"contains": ["tunnel"], "regex": [r"invoice"]}}, facts())
    assert not matches(
        {"text": {"contains": ["printer"], "regex": [r"invoice"]}}, facts()
    )


def test_empty_text_condition_matches_everything() -> None:
    assert matches({"text": {}}, facts())


def test_text_with_other_conditions_must_all_hold() -> None:
    conditions = {"text": {"contains": ["vpn"]}, "channel": ["phone"]}
    assert not matches(conditions, facts())
    assert matches(conditions, facts(channel="phone"))


ASCII = st.text(alphabet=string.ascii_letters + string.digits + " -#", max_size=30)


@given(ASCII, ASCII, ASCII)
def test_contains_finds_any_substring_in_any_case(
    before: str, needle: str, after: str
) -> None:
    ticket = facts(title=before + needle.upper() + after, description="")
    assert matches({"text": {"contains": [needle.lower()]}}, ticket)
    assert matches({"text": {"contains": [needle.swapcase()]}}, ticket)


# -- rule order -------------------------------------------------------------------


def rule(name: str, priority: int | None = None, **conditions: Any) -> dict[str, Any]:
    r: dict[str, Any] = {"name": name, "conditions": conditions}
    if priority is not None:
        r["priority"] = priority
    return r


def test_first_match_is_none_when_no_rule_matches() -> None:
    assert first_match([], facts()) is None
    assert first_match([rule("billing", category=["billing"])], facts()) is None


def test_first_match_takes_the_highest_priority() -> None:
    rules = [
        rule("low", 1),
        rule("high", 10),
        rule("middle", 5),
    ]
    assert first_match(rules, facts()) == rules[1]


def test_first_match_skips_higher_rules_that_do_not_match() -> None:
    rules = [
        rule("catch_all", 0),
        rule("billing", 10, category=["billing"]),
        rule("vpn", 5, tags=["vpn"]),
    ]
    assert first_match(rules, facts())["name"] == "vpn"  # type: ignore[index]


def test_first_match_keeps_document_order_on_ties() -> None:
    rules = [rule("a", 3), rule("b", 3), rule("c")]
    assert first_match(rules, facts())["name"] == "a"  # type: ignore[index]
    assert first_match(list(reversed(rules)), facts())["name"] == "b"  # type: ignore[index]


def test_priority_defaults_to_zero_and_may_be_negative() -> None:
    rules = [rule("fallback", -1), rule("default")]
    assert first_match(rules, facts())["name"] == "default"  # type: ignore[index]


def test_a_rule_without_conditions_matches_everything() -> None:
    assert first_match([{"name": "all"}], facts()) == {"name": "all"}

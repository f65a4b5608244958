"""A token's time claims: numbers, in range, not expired, not too long-lived."""

from __future__ import annotations

import pytest

from dotmac.ticketing.service.token_claims import (
    LATEST_NUMERIC_DATE,
    numeric_date_problem,
    time_claims_problem,
)

NOW = 1_900_000_000.0
HOUR = 3600.0
LIMITS = {"now": NOW, "leeway": 30.0, "max_lifetime": 24 * HOUR}


def check(**claims: object) -> str | None:
    return time_claims_problem(claims, **LIMITS)


class TestNumericDate:
    @pytest.mark.parametrize("value", [0, 1, NOW, LATEST_NUMERIC_DATE, 1.5])
    def test_numbers_in_range_are_dates(self, value: float) -> None:
        assert numeric_date_problem("exp", value) is None

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("1900000000", "a string"),
            (True, "a boolean"),
            (None, "null"),
            ([1], "an array"),
            ({"t": 1}, "an object"),
        ],
    )
    def test_non_numbers_are_refused_by_name(self, value: object, kind: str) -> None:
        assert numeric_date_problem("exp", value) == (
            f"token claim 'exp' must be a number of seconds since 1970, not {kind}"
        )

    @pytest.mark.parametrize(
        "value",
        [10**30, LATEST_NUMERIC_DATE + 1, -1, float("nan"), float("inf")],
        ids=["10**30", "year-10000", "negative", "nan", "infinity"],
    )
    def test_absurd_numbers_are_out_of_range(self, value: float) -> None:
        problem = numeric_date_problem("iat", value)
        assert problem is not None and "'iat' is out of range" in problem


class TestTimeClaims:
    def test_a_token_within_its_lifetime_passes(self) -> None:
        assert check(iat=NOW - HOUR, exp=NOW + HOUR) is None
        assert check(exp=NOW + HOUR) is None
        assert check(iat=NOW, nbf=NOW, exp=NOW + 24 * HOUR) is None

    def test_exp_is_required(self) -> None:
        assert check(iat=NOW) == "token is missing the 'exp' claim"

    @pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
    def test_every_time_claim_must_be_a_number(self, name: str) -> None:
        claims: dict[str, object] = {"exp": NOW + HOUR, name: str(int(NOW + 60))}
        problem = time_claims_problem(claims, **LIMITS)
        assert problem is not None and f"{name!r} must be a number" in problem

    def test_expired_within_leeway_passes_beyond_it_not(self) -> None:
        assert check(exp=NOW - 10) is None
        assert check(exp=NOW - 31) == "token has expired"

    def test_not_before_in_the_future_is_refused(self) -> None:
        assert check(nbf=NOW + 20, exp=NOW + HOUR) is None
        assert check(nbf=NOW + 120, exp=NOW + HOUR) == (
            "token is not valid yet (nbf is in the future)"
        )

    def test_issued_in_the_future_is_refused(self) -> None:
        assert check(iat=NOW + 120, exp=NOW + HOUR) == (
            "token is not valid yet (iat is in the future)"
        )

    def test_lifetime_from_iat_is_bounded(self) -> None:
        assert check(iat=NOW - HOUR, exp=NOW - HOUR + 24 * HOUR) is None
        assert check(iat=NOW - HOUR, exp=NOW + 24 * HOUR) == (
            "token lifetime of 90000 s exceeds the maximum of 86400 s"
        )

    def test_lifetime_without_iat_counts_from_now(self) -> None:
        assert check(exp=NOW + 24 * HOUR) is None
        problem = check(exp=NOW + 25 * HOUR)
        assert problem is not None and "exceeds the maximum of 86400 s" in problem

    def test_a_thousand_years_is_refused(self) -> None:
        problem = check(iat=NOW, exp=NOW + 1000 * 365 * 24 * HOUR)
        assert problem is not None and "exceeds the maximum" in problem

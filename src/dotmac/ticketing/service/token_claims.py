"""The time claims of a bearer token (``exp``, ``iat``, ``nbf``), checked.

PyJWT converts these with ``int()``, so ``"exp": "4000000000"`` (a string)
passes and ``"exp": true`` is 1; nor does it bound a token's lifetime. These
checks replace its own: pure functions of the claims, the current instant
and the limits, so every case is a unit test without a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

TIME_CLAIMS = ("exp", "iat", "nbf")

# 9999-12-31T23:59:59Z. A NumericDate beyond it is a forgery or a bug, and
# 10**30 would overflow the datetime arithmetic downstream.
LATEST_NUMERIC_DATE = 253_402_300_799


def numeric_date_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not a usable NumericDate (RFC 7519 §2), or None."""
    # bool is an int in Python, but JSON true is not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (
            f"token claim {name!r} must be a number of seconds since 1970, "
            f"not {_json_type(value)}"
        )
    if not math.isfinite(value) or not 0 <= value <= LATEST_NUMERIC_DATE:
        return f"token claim {name!r} is out of range (0 to {LATEST_NUMERIC_DATE})"
    return None


def time_claims_problem(
    claims: Mapping[str, Any],
    *,
    now: float,
    leeway: float,
    max_lifetime: float,
) -> str | None:
    """Why the token's time claims are unacceptable at ``now``, or None.

    ``exp`` is required; the lifetime is ``exp - iat``, or ``exp - now``
    when the issuer left ``iat`` out, and may exceed ``max_lifetime`` by
    no more than ``leeway`` (clock skew between issuer and service).
    """
    if "exp" not in claims:
        return "token is missing the 'exp' claim"
    for name in TIME_CLAIMS:
        if name in claims:
            problem = numeric_date_problem(name, claims[name])
            if problem is not None:
                return problem
    exp = float(claims["exp"])
    if exp <= now - leeway:
        return "token has expired"
    if "nbf" in claims and float(claims["nbf"]) > now + leeway:
        return "token is not valid yet (nbf is in the future)"
    if "iat" in claims and float(claims["iat"]) > now + leeway:
        return "token is not valid yet (iat is in the future)"
    start = float(claims["iat"]) if "iat" in claims else now
    lifetime = exp - start
    if lifetime > max_lifetime + leeway:
        return (
            f"token lifetime of {lifetime:.0f} s exceeds the maximum of "
            f"{max_lifetime:.0f} s"
        )
    return None


def _json_type(value: object) -> str:
    match value:
        case bool():
            return "a boolean"
        case str():
            return "a string"
        case None:
            return "null"
        case list():
            return "an array"
        case dict():
            return "an object"
    return type(value).__name__

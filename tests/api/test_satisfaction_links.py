"""Rating from a mail client: GET and POST /api/v1/satisfaction/{token}, no login.

The links of a resolution e-mail carry a signed token (ticket, customer,
expiry). A click records the rating through the satisfaction command (the
ticket's history shows it, as the customer) and answers a small page with
a comment form; a bad or expired token, or a ticket that is not resolved,
is refused with a 4xx and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from dotmac.ticketing.service.satisfaction_links import (
    SatisfactionClaims,
    link_secret,
    sign,
)
from dotmac.ticketing.service.settings import Settings
from tests.api.conftest import AuthFor, ManualClock

API = "/api/v1"
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def open_ticket(client: TestClient, auth_for: AuthFor, tenant: str) -> dict[str, Any]:
    response = client.post(
        f"{API}/tickets/",
        json={"title": "Printer <jam>", "customer_email": "ada@example.test"},
        headers=auth_for(tenant, "cust-1", "customer"),
    )
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


def resolve(client: TestClient, auth_for: AuthFor, tenant: str, ticket_id: str):
    response = client.post(
        f"{API}/tickets/{ticket_id}/resolve",
        json={"resolution": "Cleared", "resolution_code": "fixed"},
        headers=auth_for(tenant, "agent-1", "agent"),
    )
    assert response.status_code == 200, response.text


def token_for(
    settings: Settings,
    tenant: str,
    ticket_id: str,
    *,
    customer: str = "cust-1",
    expires_at: datetime | None = None,
) -> str:
    secret = link_secret(settings)
    assert secret is not None
    claims = SatisfactionClaims(
        tenant_id=tenant,
        ticket_id=ticket_id,
        customer_id=customer,
        expires_at=expires_at or datetime.now(UTC) + timedelta(days=30),
    )
    return sign(claims, secret)


def ticket(client: TestClient, auth_for: AuthFor, tenant: str, ticket_id: str):
    response = client.get(
        f"{API}/tickets/{ticket_id}", headers=auth_for(tenant, "agent-1", "agent")
    )
    assert response.status_code == 200
    return response.json()


def ratings_in_history(
    client: TestClient, auth_for: AuthFor, tenant: str, ticket_id: str
) -> list[dict[str, Any]]:
    history = client.get(
        f"{API}/tickets/{ticket_id}/history",
        headers=auth_for(tenant, "agent-1", "agent"),
    ).json()
    return [entry for entry in history if entry["event"] == "SatisfactionRated"]


def test_a_click_on_a_rating_link_records_it_and_offers_a_comment_form(
    client: TestClient, auth_for: AuthFor, tenant: str, settings: Settings
) -> None:
    opened = open_ticket(client, auth_for, tenant)
    resolve(client, auth_for, tenant, opened["id"])
    token = token_for(settings, tenant, opened["id"])

    clicked = client.get(f"{API}/satisfaction/{token}?rating=4", headers=BROWSER)
    assert clicked.status_code == 200, clicked.text
    assert clicked.headers["content-type"].startswith("text/html")
    assert "4 out of 5 (Good)" in clicked.text
    assert "Printer &lt;jam&gt;" in clicked.text  # autoescaped
    assert '<form method="post"' in clicked.text
    assert "default-src 'none'" in clicked.headers["content-security-policy"]
    assert clicked.headers["referrer-policy"] == "no-referrer"
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] == {
        "rating": 4,
        "comment": "",
    }
    (rated,) = ratings_in_history(client, auth_for, tenant, opened["id"])
    assert rated["actor"]["id"] == "cust-1"
    assert rated["actor"]["role"] == "customer"

    # Following the link again (a second click, a link scanner): no new event.
    again = client.get(f"{API}/satisfaction/{token}?rating=4", headers=BROWSER)
    assert again.status_code == 200
    assert len(ratings_in_history(client, auth_for, tenant, opened["id"])) == 1

    # The page's form: the same rating with a comment, no login.
    sent = client.post(
        f"{API}/satisfaction/{token}",
        data={"rating": "4", "comment": "Quick <b>and</b> kind"},
        headers=BROWSER,
    )
    assert sent.status_code == 200, sent.text
    assert "We received your comment." in sent.text
    assert "Quick &lt;b&gt;and&lt;/b&gt; kind" in sent.text
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] == {
        "rating": 4,
        "comment": "Quick <b>and</b> kind",
    }

    # Another rating from the same mail replaces the first.
    changed = client.get(f"{API}/satisfaction/{token}?rating=2", headers=BROWSER)
    assert changed.status_code == 200
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"]["rating"] == 2


def test_the_link_without_a_rating_asks_for_one(
    client: TestClient, auth_for: AuthFor, tenant: str, settings: Settings
) -> None:
    opened = open_ticket(client, auth_for, tenant)
    resolve(client, auth_for, tenant, opened["id"])
    token = token_for(settings, tenant, opened["id"])
    page = client.get(f"{API}/satisfaction/{token}", headers=BROWSER)
    assert page.status_code == 200
    assert page.text.count('type="radio" name="rating"') == 5
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] is None

    sent = client.post(
        f"{API}/satisfaction/{token}", data={"rating": "5"}, headers=BROWSER
    )
    assert sent.status_code == 200
    assert "5 out of 5 (Excellent)" in sent.text
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] == {
        "rating": 5,
        "comment": "",
    }


def test_a_forged_or_malformed_token_is_404_and_records_nothing(
    client: TestClient, auth_for: AuthFor, tenant: str, settings: Settings
) -> None:
    opened = open_ticket(client, auth_for, tenant)
    resolve(client, auth_for, tenant, opened["id"])
    token = token_for(settings, tenant, opened["id"])
    first, _, mac = token.partition(".")
    forged = f"{first}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    other_key = sign(
        SatisfactionClaims(
            tenant, opened["id"], "cust-1", datetime.now(UTC) + timedelta(days=1)
        ),
        b"not the deployment's key at all, 32+ bytes",
    )
    for bad in (forged, other_key, "garbage", "a.b", "%00.%ff"):
        page = client.get(f"{API}/satisfaction/{bad}?rating=1", headers=BROWSER)
        assert page.status_code == 404, (bad, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "not valid" in page.text
        api = client.get(f"{API}/satisfaction/{bad}?rating=1")
        assert api.status_code == 404
        assert api.headers["content-type"] == "application/problem+json"
        assert api.json()["type"].endswith("/no-such-link")
        posted = client.post(f"{API}/satisfaction/{bad}", data={"rating": "1"})
        assert posted.status_code == 404
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] is None


def test_an_expired_link_is_410_and_records_nothing(
    client: TestClient,
    auth_for: AuthFor,
    tenant: str,
    settings: Settings,
    clock: ManualClock,
) -> None:
    opened = open_ticket(client, auth_for, tenant)
    resolve(client, auth_for, tenant, opened["id"])
    expires = datetime.now(UTC) + timedelta(days=30)
    token = token_for(settings, tenant, opened["id"], expires_at=expires)
    clock.set(expires + timedelta(seconds=1))
    page = client.get(f"{API}/satisfaction/{token}?rating=5", headers=BROWSER)
    assert page.status_code == 410
    assert "expired" in page.text
    api = client.get(f"{API}/satisfaction/{token}?rating=5")
    assert api.status_code == 410
    assert api.json()["type"].endswith("/link-expired")
    clock.reset()
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] is None


def test_a_ticket_that_is_not_resolved_cannot_be_rated_by_link(
    client: TestClient, auth_for: AuthFor, tenant: str, settings: Settings
) -> None:
    opened = open_ticket(client, auth_for, tenant)  # new, never resolved
    token = token_for(settings, tenant, opened["id"])
    page = client.get(f"{API}/satisfaction/{token}?rating=5", headers=BROWSER)
    assert page.status_code == 409
    assert "nothing was recorded" in page.text
    api = client.get(f"{API}/satisfaction/{token}?rating=5")
    assert api.status_code == 409
    assert api.headers["content-type"] == "application/problem+json"
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] is None


def test_a_rating_outside_one_to_five_is_422(
    client: TestClient, auth_for: AuthFor, tenant: str, settings: Settings
) -> None:
    opened = open_ticket(client, auth_for, tenant)
    resolve(client, auth_for, tenant, opened["id"])
    token = token_for(settings, tenant, opened["id"])
    for rating in ("0", "6", "five"):
        page = client.get(f"{API}/satisfaction/{token}?rating={rating}")
        assert page.status_code == 422, rating
        posted = client.post(f"{API}/satisfaction/{token}", data={"rating": rating})
        assert posted.status_code == 422
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] is None


def test_a_link_opens_only_its_own_tenants_ticket(
    client: TestClient, auth_for: AuthFor, tenant: str, settings: Settings
) -> None:
    opened = open_ticket(client, auth_for, tenant)
    resolve(client, auth_for, tenant, opened["id"])
    # Signed for another tenant (or another customer): the ticket is not theirs.
    for token in (
        token_for(settings, f"{tenant}-other", opened["id"]),
        token_for(settings, tenant, opened["id"], customer="cust-2"),
    ):
        answer = client.get(f"{API}/satisfaction/{token}?rating=5")
        assert answer.status_code == 404
    assert ticket(client, auth_for, tenant, opened["id"])["satisfaction"] is None

"""The satisfaction pages a customer reaches from a resolution e-mail, no login.

``GET /satisfaction/{token}?rating=N`` records the rating (a one-click link
of the mail) and answers a small HTML page that confirms it and offers a
comment form; without ``rating`` the page asks for one. The form posts to
``POST /satisfaction/{token}`` (``rating``, optional ``comment``, form
encoded) from the same page. The token is the only credential
(``service/satisfaction_links.py``); a forged or malformed one answers 404,
an expired one 410, a ticket that is not resolved (any more) 409, a rating
outside 1–5 422, and nothing is recorded. Browsers (``Accept: text/html``)
get those as a page with the same status, other clients as problem+json.

The pages are Jinja2 templates, autoescaped; they load nothing from
anywhere (``Content-Security-Policy: default-src 'none'``) and send no
``Referer`` with the token in it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

from dotmac.ticketing.domain.errors import InvalidCommand
from dotmac.ticketing.domain.limits import REASON_MAX
from dotmac.ticketing.service.api.deps import Ratings
from dotmac.ticketing.service.api.problems import problem, problem_for
from dotmac.ticketing.service.api.responses import problems
from dotmac.ticketing.service.errors import TicketNotFound
from dotmac.ticketing.service.satisfaction import RatedTicket
from dotmac.ticketing.service.satisfaction_links import (
    RATING_LABELS,
    TOKEN_MAX,
    LinkExpired,
    LinkRefused,
)

HTML = "text/html"
_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True
)
# The page loads nothing and may be framed by nobody; its form posts here.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline';"
    " form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}

# Each error: (problem slug, title, what the page tells a person).
_ERRORS: dict[type[Exception], tuple[int, str, str, str]] = {
    LinkExpired: (
        410,
        "link-expired",
        "Link expired",
        "This rating link has expired. You can still reply to our e-mail"
        " to tell us how we did.",
    ),
    LinkRefused: (
        404,
        "no-such-link",
        "No such link",
        "This rating link is not valid. Please use the link in our e-mail"
        " exactly as it is.",
    ),
    TicketNotFound: (
        404,
        "no-such-link",
        "No such link",
        "The request this link rates does not exist (any more).",
    ),
}
_WHEN = {
    404: "The link is not one of ours (forged, truncated or malformed), or its"
    " ticket is gone.",
    409: "The ticket is not resolved (any more): nothing was recorded.",
    410: "The link has expired: nothing was recorded.",
    422: "A rating outside 1-5, or a comment that is too long.",
}


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    html = {HTML: {"schema": {"type": "string"}}}
    answers: dict[int | str, dict[str, Any]] = {
        200: {"description": "The page (HTML).", "content": html}
    }
    for status in statuses:
        answers[status] = {
            "description": _WHEN[status]
            + " A page for browsers (Accept: text/html), else a problem.",
            "content": {**problems(status)[status]["content"], **html},
        }
    return answers


def wants_html(request: Request) -> bool:
    return HTML in request.headers.get("accept", "")


def page(status: int = 200, **context: Any) -> HTMLResponse:
    body = _PAGES.get_template("satisfaction.html").render(
        labels=sorted(RATING_LABELS.items()), comment_max=REASON_MAX, **context
    )
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def error_answer(request: Request, exc: Exception) -> Response | None:
    """The answer to a refused request: a page or a problem, same status."""
    known = next((v for k, v in _ERRORS.items() if isinstance(exc, k)), None)
    if known is not None:
        status, slug, title, message = known
        if wants_html(request):
            return page(status, heading=title, message=message)
        return problem(status, slug, title, str(exc))
    answer = problem_for(exc)
    if answer is None or not wants_html(request):
        return answer
    message = {
        409: "This request is not resolved (any more), so it cannot be rated"
        " now: nothing was recorded.",
    }.get(answer.status_code, "This rating could not be recorded.")
    return page(answer.status_code, heading="Not recorded", message=message)


class PageRoute(APIRoute):
    """Answers its errors as :func:`error_answer` says (validation too)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                answer = error_answer(request, exc)
                if answer is None:
                    raise
                return answer

        return handle


Token = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=TOKEN_MAX,
        description="The signed token of the resolution e-mail's link.",
    ),
]


router = APIRouter(prefix="/satisfaction", tags=["satisfaction"], route_class=PageRoute)


@router.get(
    "/{token}",
    summary="Rate a resolved ticket from its e-mail (no login)",
    response_class=HTMLResponse,
    responses=_documented(404, 409, 410, 422),
)
async def rate_by_link(
    token: Token,
    ratings: Ratings,
    rating: Annotated[
        int | None,
        Query(ge=1, le=5, description="The rating to record (1-5)."),
    ] = None,
) -> HTMLResponse:
    if rating is None:
        shown = await run_in_threadpool(ratings.show, token)
        return _asking(token, shown)
    rated = await run_in_threadpool(ratings.rate, token, rating)
    return _thanks(token, rated, first=True)


@router.post(
    "/{token}",
    summary="Send a rating and comment from the rating page (no login)",
    response_class=HTMLResponse,
    responses=_documented(404, 409, 410, 422),
)
async def comment_by_link(
    token: Token,
    ratings: Ratings,
    rating: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=REASON_MAX)] = "",
) -> HTMLResponse:
    if "\x00" in comment:
        raise InvalidCommand("comment", "must not contain NUL characters")
    rated = await run_in_threadpool(ratings.rate, token, rating, comment)
    return _thanks(token, rated, first=False)


def _asking(token: str, ticket: RatedTicket) -> HTMLResponse:
    return page(
        heading="How did we do?",
        message="Please rate the support you received.",
        ticket=ticket,
        form=True,
        ask_rating=True,
        rating=ticket.rating,
        comment=ticket.comment,
        action=token,
    )


def _thanks(token: str, ticket: RatedTicket, *, first: bool) -> HTMLResponse:
    label = RATING_LABELS.get(ticket.rating or 0, "")
    return page(
        heading="Thank you!",
        message=f"Your rating: {ticket.rating} out of 5 ({label})."
        + (
            ""
            if first
            else " We received your comment."
            if ticket.comment
            else " Your rating is recorded."
        ),
        ticket=ticket,
        form=first,
        ask_rating=False,
        rating=ticket.rating,
        comment=ticket.comment,
        action=token,
    )

"""The error answers routes declare in the OpenAPI document.

Every error is an RFC 9457 problem (``problems.py``). A route lists each
status it can answer by combining the groups below in its ``responses=``
(the routers set the groups every one of their routes shares), so the
document says exactly what a client has to handle and a conformance test
can hold the service to it.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from dotmac.ticketing.schemas import Problem
from dotmac.ticketing.service.api.problems import PROBLEM_MEDIA_TYPE

Responses = dict[int | str, dict[str, Any]]

# Inline rather than a $ref: a host application that mounts one router
# gets a complete document without registering components.
_PROBLEM_SCHEMA = Problem.model_json_schema()

_WHEN: dict[int, str] = {
    400: "The body could not be read (not JSON, not UTF-8, not multipart).",
    401: "No token, or one that is expired, forged or malformed.",
    403: "The caller's role or tenant may not do this.",
    404: "No such resource in the caller's tenant.",
    409: "Refused in the resource's current state, or a concurrent change.",
    412: "`If-Match` names a version that is not the current one.",
    410: "The link has expired.",
    413: "The body is larger than the configured limit.",
    422: "A parameter or the body does not match the schema (or a rule "
    "the schema cannot state, named in `detail`).",
    503: "The read model is still being built; retry after `Retry-After`.",
}


def problems(*statuses: int) -> Responses:
    """``responses=`` entries for problem answers with these statuses."""
    return {
        status: {
            "description": f"{HTTPStatus(status).phrase}. {_WHEN[status]}",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


# Behind a bearer token: missing or bad (401), or a role that may not (403).
AUTHENTICATED = problems(401, 403)
# A path or query parameter can be malformed.
PARAMETERS = problems(422)
# The path names a resource that may not exist.
RESOURCE = problems(404)
# The route reads a request body.
BODY = problems(400, 413, 422)
# The route changes state: refused in this state, or a concurrent change.
WRITE = problems(409)
# The route honours If-Match.
VERSIONED = problems(412)
# The route reads the projections (lists, dashboard).
PROJECTION = problems(503)

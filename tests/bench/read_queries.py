"""Query latency on a big tenant: the ticket list and the dashboard.

One client, one request at a time, so each latency is the request's own
and not a queue's. The kinds of request are interleaved (so a slow
minute of a shared machine spreads over all of them), and each kind
rotates over a few variants; one untimed request of each variant runs
first (and hands out the cursors of the second-page requests).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tests.bench.harness import BenchError, CpuProbe, ReadRow, cpu_used
from tests.bench.http_creates import TICKETS, describe_failure

Params = Mapping[str, Any]

# The data set (tests/bench/read_data.py): 1 in 20 tickets per subject,
# open (assigned) or resolved; about 15% have a given tag.
LIST_KINDS: dict[str, tuple[str, Sequence[Params]]] = {
    "default": ("no filter, limit 50, sort -created (the defaults)", [{}]),
    "status": (
        "status=open (5%) | new+open (95%) | resolved (5%)",
        [{"status": "open"}, {"status": ["new", "open"]}, {"status": "resolved"}],
    ),
    "q": (
        "full text: q=invoice | printer offline | password reset (5% each)",
        [{"q": "invoice"}, {"q": "printer offline"}, {"q": "password reset"}],
    ),
    "tags": (
        "tags=vip (15%) | network,security (any) | billing+vip (all)",
        [
            {"tags": "vip"},
            {"tags": ["network", "security"]},
            {"tags": ["billing", "vip"], "tags_match": "all"},
        ],
    ),
}
SECOND_PAGE = "page 2"
SECOND_PAGE_SORTS = ("-created", "-updated", "-priority")
DASHBOARD = f"{TICKETS}/analytics/dashboard"
DASHBOARD_KINDS: dict[str, tuple[str, Sequence[Params]]] = {
    "30 days": ("default range: the last 30 days, all teams", [{}]),
    "30 days, team": ("the last 30 days, team=tier1", [{"team": "tier1"}]),
}


def _get(
    client: httpx.Client, path: str, params: Params, row: ReadRow, total: ReadRow
) -> dict[str, Any] | None:
    response: httpx.Response | None = None
    error: Exception | None = None
    start = time.perf_counter()
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        error = exc
    elapsed = (time.perf_counter() - start) * 1000
    row.latencies_ms.append(elapsed)
    total.latencies_ms.append(elapsed)
    if response is None or response.status_code != 200:
        description = describe_failure(response, error)
        row.record_error(description)
        total.record_error(description)
        return None
    body: dict[str, Any] = response.json()
    return body


def _measure(
    client: httpx.Client,
    path: str,
    kinds: dict[str, list[Params]],
    requests: int,
    rows: dict[str, ReadRow],
    total: ReadRow,
    cpu_probe: CpuProbe | None,
) -> None:
    rotations = {kind: itertools.cycle(variants) for kind, variants in kinds.items()}
    order = itertools.cycle(kinds)
    with cpu_used(cpu_probe, total):
        start = time.perf_counter()
        for _ in range(requests):
            kind = next(order)
            _get(client, path, next(rotations[kind]), rows[kind], total)
        total.seconds = time.perf_counter() - start
    for row in rows.values():
        # One request at a time: the time spent in this kind's requests.
        row.count = len(row.latencies_ms)
        row.seconds = sum(row.latencies_ms) / 1000
    total.count = len(total.latencies_ms)


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(120.0),
    )


def run_list_queries(
    base_url: str,
    token: str,
    *,
    requests: int,
    tickets: int,
    cpu_probe: CpuProbe | None = None,
) -> list[ReadRow]:
    """A row per kind of list request, then one for all of them."""
    kinds = {kind: list(variants) for kind, (_, variants) in LIST_KINDS.items()}
    notes = {kind: note for kind, (note, _) in LIST_KINDS.items()}
    notes[SECOND_PAGE] = (
        "cursor=<next of page 1, fetched untimed>, sort -created | -updated | -priority"
    )
    with _client(base_url, token) as client:
        warm = ReadRow("warm-up", 0, 0.0, "req", "")
        for variants in kinds.values():
            for params in variants:
                page = _get(client, f"{TICKETS}/", params, warm, warm)
                if page is not None and not page["items"]:
                    warm.record_error(f"no tickets match {dict(params)}")
        kinds[SECOND_PAGE] = []
        for sort in SECOND_PAGE_SORTS:
            page = _get(client, f"{TICKETS}/", {"sort": sort}, warm, warm)
            if page is not None and page["next"]:
                params = {"sort": sort, "cursor": page["next"]}
                _get(client, f"{TICKETS}/", params, warm, warm)
                kinds[SECOND_PAGE].append(params)
            elif page is not None:
                warm.record_error(f"no second page with sort {sort}")
        _check_warmup(warm)
        rows = {
            kind: ReadRow(f"GET /tickets/ {kind}", 0, 0.0, "req", notes[kind])
            for kind in kinds
        }
        total = ReadRow(
            "GET /tickets/ all",
            0,
            0.0,
            "req",
            notes=(
                f"the above interleaved, {tickets:,}+ tickets in the tenant; "
                "one client, one request at a time; after one untimed request "
                "per variant"
            ),
            end_section=True,
        )
        _measure(client, f"{TICKETS}/", kinds, requests, rows, total, cpu_probe)
    return [*rows.values(), total]


def run_dashboards(
    base_url: str,
    token: str,
    *,
    requests: int,
    cpu_probe: CpuProbe | None = None,
) -> list[ReadRow]:
    """A row per dashboard variant, then one for all of them."""
    kinds = {kind: list(variants) for kind, (_, variants) in DASHBOARD_KINDS.items()}
    with _client(base_url, token) as client:
        warm = ReadRow("warm-up", 0, 0.0, "req", "")
        in_range: dict[str, int] = {}
        for kind, variants in kinds.items():
            for params in variants:
                figures = _get(client, DASHBOARD, params, warm, warm)
                if figures is not None:
                    in_range[kind] = figures["created"]
        _check_warmup(warm)
        rows = {
            kind: ReadRow(
                f"dashboard {kind}",
                0,
                0.0,
                "req",
                f"{note}: {in_range[kind]:,} tickets created in range",
            )
            for kind, (note, _) in DASHBOARD_KINDS.items()
        }
        total = ReadRow(
            "dashboard all",
            0,
            0.0,
            "req",
            notes=(
                "GET /tickets/analytics/dashboard, the above alternating; one "
                "client, one request at a time; after one untimed request of each"
            ),
            end_section=True,
        )
        _measure(client, DASHBOARD, kinds, requests, rows, total, cpu_probe)
    return [*rows.values(), total]


def _check_warmup(warm: ReadRow) -> None:
    if warm.errors:
        detail = "; ".join(warm.error_samples)
        raise BenchError(f"the untimed first requests went wrong: {detail}")


def run_ticket_gets(
    base_url: str,
    token: str,
    *,
    requests: int,
    cpu_probe: CpuProbe | None = None,
) -> ReadRow:
    """GET /tickets/{id} of tickets spread over the tenant, one at a time.

    The ids are taken (untimed) from list pages in several orders, so the
    reads are of old and new, busy and quiet tickets: each replays its
    events from the store (from its latest snapshot).
    """
    with _client(base_url, token) as client:
        warm = ReadRow("warm-up", 0, 0.0, "req", "")
        ids: list[str] = []
        for sort in ("-created", "created", "-updated", "-priority"):
            page = _get(client, f"{TICKETS}/", {"sort": sort, "limit": 50}, warm, warm)
            ids += [item["id"] for item in (page or {}).get("items", [])]
        _check_warmup(warm)
        if not ids:
            raise BenchError("no tickets to read one by one")
        row = ReadRow(
            "GET /tickets/{id}",
            0,
            0.0,
            "req",
            notes=f"{len(set(ids))} tickets of all ages, read in turn; one client",
            end_section=True,
        )
        paths = itertools.cycle(ids)
        untimed = ReadRow("untimed", 0, 0.0, "req", "")
        with cpu_used(cpu_probe, row):
            start = time.perf_counter()
            for _ in range(requests):
                _get(client, f"{TICKETS}/{next(paths)}", {}, row, untimed)
            row.seconds = time.perf_counter() - start
        row.count = len(row.latencies_ms)
    return row

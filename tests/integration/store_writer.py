"""A writer process for the group-commit tests: creates tickets from threads.

``python -m tests.integration.store_writer DATABASE_URL TICKETS THREADS``
prints ``ack <ticket id> <position>`` (flushed) once each create has been
acknowledged, so a test that kills this process knows what was promised.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from threading import Lock

from dotmac.ticketing.service.bootstrap import initialize_ticketing
from dotmac.ticketing.service.context import RequestContext


def main(url: str, tickets: int, threads: int) -> None:
    core = initialize_ticketing({"database_url": url, "db_pool_size": threads})
    ctx = RequestContext(
        tenant_id="writers", user_id="agent-1", roles=frozenset({"agent"})
    )
    printing = Lock()

    def create(i: int) -> None:
        result = core.tickets.create_ticket(ctx, title=f"T{i}", customer_id="c")
        with printing:
            print(f"ack {result.ticket.id} {result.position}", flush=True)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, range(tickets)))
    core.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))

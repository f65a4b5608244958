"""Which ticket events a consumer group has applied, told by log position.

Every CloudEvent the relay publishes carries ``logposition``: the event's
notification id in the event store (the global log order). Each consumer
group records, per partition of the ticket topic, a *watermark*: the
highest log position it has applied on that partition. Because of how the
relay publishes (see ``relay.py``: one ticket event goes to the partition
:func:`partition_for` names, and on each partition the first copy of every
event comes after the first copies of all earlier events of that
partition), and because a consumer applies a partition's records in offset
order without gaps, the watermark ``P`` of a group on partition ``k``
means:

    every ticket event routed to ``k`` whose log position is at most ``P``
    has been applied by the group.

It is a contiguous watermark, not the highest position seen: a group never
sees an event of partition ``k`` after a later one of ``k`` for the first
time, so by the time it applies position ``P`` it has applied every earlier
one of ``k``. Across partitions nothing is ordered (partition 2 may be far
ahead of partition 5), so a group's overall "applied up to" is not one
number; :func:`first_unapplied` asks the log instead: the first event, in
log order, above the watermark of its own partition for some group. The
relay republishes from there after the broker lost the topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka.partitioner import murmur2

# A group's watermark per partition: partition → highest applied position.
Watermarks = Mapping[int, int]


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a ticket's events: Kafka's default (murmur2) partitioner.

    The relay routes every record explicitly with this function, so the
    routing it reasons about when republishing is the routing it used, and
    it is the one the Java and aiokafka clients use for a keyed record.
    """
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def scan_start(groups: Mapping[str, Watermarks], partitions: int) -> int:
    """The lowest watermark of any group on any partition (0 when none).

    Every event at or below it has been applied by every group, whatever
    its partition; the search for the first unapplied event starts above.
    A partition without a watermark counts as 0: nothing known applied.
    """
    return min(
        (marks.get(k, 0) for marks in groups.values() for k in range(partitions)),
        default=0,
    )


def first_unapplied(
    events: Iterable[tuple[int, bytes]],
    groups: Mapping[str, Watermarks],
    partitions: int,
) -> int | None:
    """The first of ``events`` (position, key), in log order, some group lacks.

    An event is applied by a group when its position is at most the group's
    watermark on the event's partition. Every event before the one returned
    is applied by every group; None when all are.
    """
    for position, key in events:
        partition = partition_for(key, partitions)
        if any(position > marks.get(partition, 0) for marks in groups.values()):
            return position
    return None


def already_applied(position: int | None, watermark: int) -> bool:
    """Whether a record at ``position`` of a partition is below its watermark.

    A record without a position (written by an older relay, or by hand) is
    never taken as applied: the consumer's event-id ledger decides.
    """
    return position is not None and position <= watermark

"""Log position watermarks: routing, where a republish starts, what to skip."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from aiokafka.partitioner import DefaultPartitioner

from dotmac.ticketing.consumers.kafka.log_positions import (
    already_applied,
    first_unapplied,
    partition_for,
    scan_start,
)

PARTITIONS = 3


def keys_by_partition(count: int) -> dict[int, list[bytes]]:
    """Ticket ids (as record keys), grouped by the partition they route to."""
    grouped: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}
    number = 0
    while any(len(keys) < count for keys in grouped.values()):
        key = str(UUID(int=number)).encode()
        grouped[partition_for(key, PARTITIONS)].append(key)
        number += 1
    return {p: keys[:count] for p, keys in grouped.items()}


def test_routes_like_kafkas_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for partitions in (1, 4, 6):
        for _ in range(200):
            key = str(uuid4()).encode()
            expected = partitioner(key, list(range(partitions)), [])
            assert partition_for(key, partitions) == expected


def test_a_topic_has_partitions() -> None:
    with pytest.raises(ValueError):
        partition_for(b"key", 0)


def test_the_scan_starts_at_the_lowest_watermark_and_missing_counts_as_zero() -> None:
    assert scan_start({}, PARTITIONS) == 0
    assert scan_start({"a": {0: 50, 1: 40, 2: 60}, "b": {0: 70, 1: 70, 2: 45}}, 3) == 40
    assert scan_start({"a": {0: 50, 2: 60}}, PARTITIONS) == 0


def test_the_first_unapplied_event_is_above_its_own_partitions_watermark() -> None:
    keys = keys_by_partition(2)
    # Log: positions 1..6 alternate over the partitions; partition 1 is
    # behind (its watermark 2 is its first event), the others caught up.
    log = [
        (1, keys[0][0]),
        (2, keys[1][0]),
        (3, keys[2][0]),
        (4, keys[0][1]),
        (5, keys[1][1]),
        (6, keys[2][1]),
    ]
    ahead = {0: 4, 1: 5, 2: 6}
    behind = {0: 4, 1: 2, 2: 6}
    assert first_unapplied(log, {"a": ahead}, PARTITIONS) is None
    # Not the lowest watermark + 1 (3, applied on partition 2), not the
    # highest seen: the first event its partition has not reached.
    assert first_unapplied(log, {"a": ahead, "b": behind}, PARTITIONS) == 5
    # A group without a watermark on a partition has applied nothing there.
    assert first_unapplied(log, {"a": {0: 4, 2: 6}}, PARTITIONS) == 2


def test_an_idle_partition_holds_nothing_back() -> None:
    keys = keys_by_partition(3)
    # Partition 2 had one event long ago; the group applied it.
    log = [(1, keys[2][0])] + [(10 + i, keys[i % 2][i // 2]) for i in range(6)]
    marks = {0: 14, 1: 15, 2: 1}
    assert first_unapplied(log, {"a": marks}, PARTITIONS) is None
    assert first_unapplied(log, {"a": {**marks, 1: 13}}, PARTITIONS) == 15


def test_only_a_record_with_a_position_at_or_below_the_watermark_is_skipped() -> None:
    assert already_applied(5, 5)
    assert already_applied(1, 5)
    assert not already_applied(6, 5)
    assert not already_applied(None, 5)
    assert not already_applied(1, 0)

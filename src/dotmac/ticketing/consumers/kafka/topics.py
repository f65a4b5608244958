"""The Kafka topics of the service: one name each, versioned in the name.

A breaking change to a topic's messages means a new topic (``.v2``), so
subscribers of the old one keep working while they migrate.
"""

from __future__ import annotations

# Every ticket event, as a CloudEvents 1.0 JSON envelope, key = ticket id
# (so one ticket's events stay in order on one partition). Written by the
# relay only.
TICKET_EVENTS = "ticketing.ticket-events.v1"

# Ticket events a consumer could not process after its retries, with the
# error and the original message; the consumer's partition moves on.
TICKET_EVENTS_DLQ = "ticketing.ticket-events.dlq.v1"

# Notifications whose delivery was given up (webhooks past their retry time).
NOTIFICATIONS_DLQ = "ticketing.notifications.dlq.v1"


def service_topics(partitions: int) -> dict[str, int]:
    """Every topic the service uses, with its partition count.

    The event topic and its dead letters share the partition count (the
    dead-letter topic keeps the ticket id as key); the notifications'
    dead letters are few and need no parallelism.
    """
    return {
        TICKET_EVENTS: partitions,
        TICKET_EVENTS_DLQ: partitions,
        NOTIFICATIONS_DLQ: 1,
    }

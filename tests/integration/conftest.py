"""Fixtures of the integration ring: the session's Kafka-protocol broker."""

from tests.kafka_fixtures import kafka

__all__ = ["kafka"]

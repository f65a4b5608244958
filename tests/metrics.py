"""Reading Prometheus exposition text in tests: one sample's value."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with ``labels`` (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(
                found.labels.get(k) == v for k, v in labels.items()
            ):
                return float(found.value)
    return 0.0

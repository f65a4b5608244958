"""The settings of restarts, readiness, topics and template budgets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dotmac.ticketing.service.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str)
        monkeypatch.delenv(field.validation_alias, raising=False)


@pytest.mark.parametrize(
    ("variable", "field", "raw", "expected"),
    [
        (
            "TICKETING_WORKER_RESTART_INITIAL_SECONDS",
            "worker_restart_initial_seconds",
            "2",
            2.0,
        ),
        (
            "TICKETING_WORKER_RESTART_MAX_SECONDS",
            "worker_restart_max_seconds",
            "60",
            60.0,
        ),
        ("TICKETING_WORKER_HEARTBEAT_SECONDS", "worker_heartbeat_seconds", "1.5", 1.5),
        ("TICKETING_READY_STALE_SECONDS", "ready_stale_seconds", "90", 90.0),
        ("TICKETING_READY_MAX_LAG", "ready_max_lag", "50", 50),
        (
            "TICKETING_READY_WORKERS",
            "ready_workers",
            " relay, notifier ",
            "relay,notifier",
        ),
        ("TICKETING_READY_WORKERS", "ready_workers", "None", "none"),
        (
            "TICKETING_KAFKA_RECREATE_MISMATCHED_TOPICS",
            "kafka_recreate_mismatched_topics",
            "true",
            True,
        ),
        ("TICKETING_TEMPLATE_RENDER_SECONDS", "template_render_seconds", "0.25", 0.25),
        ("TICKETING_TEMPLATE_MAX_CHARS", "template_max_chars", "5000", 5000),
    ],
)
def test_each_variable_sets_its_field(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    field: str,
    raw: str,
    expected: object,
) -> None:
    monkeypatch.setenv(variable, raw)
    assert getattr(Settings(), field) == expected


def test_the_required_workers() -> None:
    assert Settings().ready_worker_names is None  # every one that reported
    assert Settings(ready_workers="none").ready_worker_names == ()
    assert Settings(ready_workers="projections,relay").ready_worker_names == (
        "projections",
        "relay",
    )


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("TICKETING_READY_WORKERS", "projections,mailer"),
        ("TICKETING_WORKER_HEARTBEAT_SECONDS", "0"),
        ("TICKETING_READY_MAX_LAG", "-1"),
        ("TICKETING_TEMPLATE_RENDER_SECONDS", "0"),
        ("TICKETING_TEMPLATE_MAX_CHARS", "0"),
    ],
)
def test_invalid_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ValidationError, match=variable):
        Settings()

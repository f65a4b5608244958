"""A tenant's configuration stream stored by earlier code loads unchanged.

``tests/fixtures/stored_tenant_settings_v1.json`` holds rows written while the
aggregate lived in ``domain/tenant_settings.py`` (see
``tests/fixtures/stored_tenant_settings.py``). The events' topics are explicit
strings, so moving the class must neither change them nor stop old rows, or a
stored snapshot, from loading.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from dotmac.ticketing.store.application import AGGREGATES
from tests.fixtures.stored_tenant_settings import FIXTURE
from tests.fixtures.stored_tickets import mapper

STORED: dict[str, Any] = json.loads(FIXTURE.read_text())


def decoded(row: dict[str, Any]) -> Any:
    return mapper().to_domain_event(
        StoredEvent(
            originator_id=UUID(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"].encode("utf-8"),
        )
    )


def loaded(aggregate: Any) -> dict[str, Any]:
    return {
        "tenant_id": aggregate.tenant_id,
        "version": aggregate.version,
        "document": aggregate.document,
    }


def test_replaying_the_stored_events_gives_the_recorded_configuration() -> None:
    aggregate = None
    for row in STORED["events"]:
        aggregate = decoded(row).mutate(aggregate)
    assert loaded(aggregate) == STORED["expected"]


def test_the_stored_snapshot_gives_the_recorded_configuration() -> None:
    assert loaded(decoded(STORED["snapshot"]).mutate(None)) == STORED["expected"]


def test_the_aggregate_writes_the_topics_it_wrote_then() -> None:
    (aggregate,) = [a for a in AGGREGATES if a.__name__ == "TenantSettings"]
    written = {row["topic"] for row in STORED["events"]}
    assert written == {
        aggregate.TenantSettingsCreated.TOPIC,  # type: ignore[attr-defined]
        aggregate.TenantSettingsChanged.TOPIC,  # type: ignore[attr-defined]
    }
    assert json.loads(STORED["snapshot"]["state"])["topic"] == aggregate.TOPIC  # type: ignore[attr-defined]


def test_a_fresh_process_decodes_the_stored_snapshot() -> None:
    row = STORED["snapshot"]
    script = (
        "import json, sys; from uuid import UUID;"
        "from eventsourcing.persistence import StoredEvent;"
        "from tests.fixtures.stored_tickets import mapper;"
        "row = json.loads(sys.argv[1]);"
        "event = mapper().to_domain_event(StoredEvent(UUID(row['originator_id']),"
        " row['originator_version'], row['topic'], row['state'].encode()));"
        "print(event.mutate(None).version)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(row)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == str(row["originator_version"]), done.stderr

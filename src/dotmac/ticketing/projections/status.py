"""How far each projection has got: for operators and `/projections/status`."""

from __future__ import annotations

from eventsourcing.postgres import PostgresDatastore

from dotmac.ticketing.projections.read_model import APPLICATION_NAME
from dotmac.ticketing.projections.registry import BuildRegistry
from dotmac.ticketing.projections.tables import TICKETS_PROJECTION_VERSION
from dotmac.ticketing.schemas.queries import ProjectionStatusRead

PROJECTIONS = {"tickets": TICKETS_PROJECTION_VERSION}


def head_position(datastore: PostgresDatastore) -> int:
    with datastore.transaction() as cur:
        cur.execute("SELECT max(notification_id) AS head FROM ticketing_events")
        row = cur.fetchone()
    return int(row["head"] or 0) if row else 0


def projection_statuses(datastore: PostgresDatastore) -> list[ProjectionStatusRead]:
    registry = BuildRegistry(datastore)
    head = head_position(datastore)
    statuses = []
    for name, code_version in PROJECTIONS.items():
        active = registry.active(name)
        building = registry.building(name)
        position = registry.position(active, APPLICATION_NAME) if active else 0
        statuses.append(
            ProjectionStatusRead(
                name=name,
                code_version=code_version,
                active_schema=active.schema if active else None,
                active_version=active.version if active else None,
                position=position,
                head=head,
                lag=max(head - position, 0),
                rebuilding_schema=building.schema if building else None,
                rebuild_position=(
                    registry.position(building, APPLICATION_NAME) if building else None
                ),
            )
        )
    return statuses

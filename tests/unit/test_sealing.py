"""The sealing mapper: personal fields encrypted at rest, erased with the key."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from cryptography.exceptions import InvalidTag
from eventsourcing.utils import resolve_topic

from dotmac.ticketing.consumers.kafka.cloudevents import to_cloudevent
from dotmac.ticketing.domain.personal_data import ERASED, fields_of, personal_paths
from dotmac.ticketing.domain.ticket import Ticket
from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.sealing import (
    SEALED,
    NoKeyForSave,
    SealingMapper,
    open_blob,
    seal_blob,
    sealed_blob_key,
)
from dotmac.ticketing.store.subject_keys import CachedKeys, MemoryKeys, SubjectKey
from tests.event_samples import tickets_with_every_event

POPO = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


def saved_app(**options: Any) -> tuple[TicketApplication, list[Ticket]]:
    app = TicketApplication(dict(POPO), snapshot_interval=5, **options)
    tickets = tickets_with_every_event()
    for ticket in tickets:
        app.save(ticket)
    return app, tickets


def stored_states(app: TicketApplication, ticket: Ticket) -> list[dict[str, Any]]:
    return [
        json.loads(e.state)
        for e in app.recorder.select_events(ticket.id)  # type: ignore[attr-defined]
    ]


def test_personal_fields_are_not_stored_in_clear_and_read_back_whole() -> None:
    app, tickets = saved_app()
    for ticket in tickets:
        events = app.recorder.select_events(ticket.id)  # type: ignore[attr-defined]
        for stored in events:
            state = json.loads(stored.state)
            patterns = fields_of(resolve_topic(stored.topic))
            # Every personal place holds nothing; the values are in the box.
            assert personal_paths(state, patterns) == []
            opened = vars(app.mapper.to_domain_event(stored))
            assert (SEALED in state) == bool(personal_paths(opened, patterns))
        assert ticket.title.encode() not in b"".join(e.state for e in events)
        assert vars(app.repository.get(ticket.id)) == vars(ticket)


def test_a_destroyed_key_reads_as_erased_and_everything_still_loads() -> None:
    app, tickets = saved_app()
    ticket = tickets[0]
    app.keys.destroy(ticket.tenant_id, ticket_id=ticket.id)
    loaded = app.repository.get(ticket.id)
    assert loaded.title == loaded.description == ERASED
    assert {c["body"] for c in loaded.comments} == {ERASED}
    assert loaded.status == ticket.status  # the facts are kept
    assert loaded.sla_clocks == ticket.sla_clocks
    # Every reader's path: each event decodes and becomes a valid CloudEvent.
    for event in app.events.get(ticket.id):
        assert isinstance(event, Ticket.Event)
        to_cloudevent(event)
    # The other tickets keep their keys.
    assert app.repository.get(tickets[1].id).title == tickets[1].title


def test_snapshots_are_sealed_too() -> None:
    app, tickets = saved_app()
    ticket = max(tickets, key=lambda t: t.version)
    assert ticket.version >= 5
    assert app.snapshots is not None
    (snapshot,) = list(app.snapshots.get(ticket.id, desc=True, limit=1))
    raw = app.snapshots.recorder.select_events(ticket.id)[-1].state  # type: ignore[attr-defined]
    assert ticket.title.encode() not in raw
    assert snapshot.state["title"] == ticket.title
    app.keys.destroy(ticket.tenant_id, ticket_id=ticket.id)
    (erased,) = list(app.snapshots.get(ticket.id, desc=True, limit=1))
    assert erased.state["title"] == ERASED


def test_a_box_copied_onto_another_event_does_not_open() -> None:
    app, tickets = saved_app()
    ticket = tickets[0]
    events = app.recorder.select_events(ticket.id)  # type: ignore[attr-defined]
    first = next(e for e in events if SEALED.encode() in e.state)
    later = next(e for e in events if SEALED.encode() in e.state and e is not first)
    state = json.loads(later.state)
    state[SEALED] = json.loads(first.state)[SEALED]
    forged = type(later)(
        originator_id=later.originator_id,
        originator_version=later.originator_version,
        topic=later.topic,
        state=json.dumps(state).encode(),
    )
    with pytest.raises(InvalidTag):
        app.mapper.to_domain_event(forged)


def test_a_save_without_a_key_in_scope_is_refused() -> None:
    mapper = TicketApplication(dict(POPO)).mapper
    assert isinstance(mapper, SealingMapper)
    created = tickets_with_every_event()[0].pending_events[0]
    with pytest.raises(NoKeyForSave):
        mapper.to_stored_event(created)


def test_with_sealing_off_new_events_are_clear_and_old_ones_still_open() -> None:
    app, tickets = saved_app(seal_personal_data=False)
    stored = json.dumps(stored_states(app, tickets[0]))
    assert tickets[0].title in stored and SEALED not in stored
    assert app.repository.get(tickets[0].id).title == tickets[0].title


def test_cached_keys_forget_a_live_key_after_their_ttl() -> None:
    now = [0.0]
    store = MemoryKeys()
    key = store.add(SubjectKey.new(tenant_id="t", subject_id="c", ticket_id=uuid4()))
    elsewhere = CachedKeys(store, ttl=10, clock=lambda: now[0])
    assert elsewhere.secret(key.key_id) == key.secret
    store.destroy("t", subject_id="c")  # by another process
    assert elsewhere.secret(key.key_id) == key.secret  # still cached
    now[0] = 11
    assert elsewhere.secret(key.key_id) is None
    assert elsewhere.active_key(key.ticket_id) is None


def test_files_are_sealed_with_their_tickets_key() -> None:
    key = SubjectKey.new(tenant_id="t", subject_id="c", ticket_id=uuid4())
    blob = seal_blob(key, b"passport scan", b"t:a1")
    assert b"passport" not in blob
    assert sealed_blob_key(blob) == key.key_id
    assert open_blob(key.secret, blob, b"t:a1") == b"passport scan"
    assert sealed_blob_key(b"plain bytes") is None
    with pytest.raises(InvalidTag):
        open_blob(key.secret, blob, b"t:another")


class CountingKeys(MemoryKeys):
    """Keys in memory that count how often they are asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def secret(self, key_id: Any) -> bytes | None:
        self.asked += 1
        return super().secret(key_id)

    def secrets(self, key_ids: Any) -> dict[Any, bytes | None]:
        self.asked += 1
        return {k: MemoryKeys.secret(self, UUID(k)) for k in key_ids}


def test_a_batch_reader_fetches_its_keys_in_one_go() -> None:
    writer, tickets = saved_app()
    stored = [
        e
        for t in tickets
        for e in writer.recorder.select_events(t.id)  # type: ignore[attr-defined]
    ]
    keys = CountingKeys()
    for ticket in tickets:
        keys.add(writer.keys.active_key(ticket.id))  # type: ignore[arg-type]
    reader = TicketApplication(dict(POPO), key_store=keys)
    mapper = reader.mapper
    assert isinstance(mapper, SealingMapper)
    mapper.open_keys_of(stored)
    assert keys.asked == 1
    opened = [mapper.to_domain_event(e) for e in stored]
    assert keys.asked == 1
    assert not [e for e in opened if ERASED in repr(vars(e))]
    assert vars(opened[0])["title"].startswith("Printer 1")

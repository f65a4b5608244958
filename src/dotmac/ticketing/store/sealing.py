"""Personal data sealed in the event store: the mapper that does it.

The library turns every domain event into a stored event, and back, in its
``Mapper``; :class:`SealingMapper` (the application's ``MAPPER_TOPIC``)
takes a ticket event's personal fields (``domain.personal_data``) out of
its state before the library encodes it, and stores them encrypted
(AES-256-GCM) with the ticket's key in a ``__sealed__`` entry naming that
key. Reading, it puts them back; if the key was destroyed, it puts
``"[erased]"`` in their place. Every reader of the log (the API, the
projections, the relay, the workflows) decodes through this mapper, so an
erasure takes effect in all of them, and none needs a key for the facts,
which stay in clear.

The key a save seals with is given by the application for the duration of
the save (:func:`sealing_with`): the aggregates being saved say whose data
it is.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent

from dotmac.ticketing.domain.personal_data import erased, fields_of, put_back, take_out
from dotmac.ticketing.store.subject_keys import CachedKeys, MemoryKeys, SubjectKey

SEALED = "__sealed__"
_NONCE_BYTES = 12

#: The keys of the save in progress (this thread's), and how to find or
#: make one for a ticket not among them.
_keys_of_save: ContextVar[KeysOfSave | None] = ContextVar("keys_of_save", default=None)


class NoKeyForSave(RuntimeError):
    """A ticket event with personal data was saved with no key for its ticket."""


@dataclass(frozen=True)
class KeysOfSave:
    keys: Mapping[UUID, SubjectKey]
    #: Called for a ticket whose events need a key it was not given: its
    #: key in use, or a new one (kept at once).
    otherwise: Callable[[UUID], SubjectKey]

    def key_for(self, ticket_id: UUID) -> SubjectKey:
        return self.keys.get(ticket_id) or self.otherwise(ticket_id)


@contextmanager
def sealing_with(
    keys: Mapping[UUID, SubjectKey], otherwise: Callable[[UUID], SubjectKey]
) -> Iterator[None]:
    """Seal the events (and snapshots) saved meanwhile with these keys."""
    token = _keys_of_save.set(KeysOfSave(keys, otherwise))
    try:
        yield
    finally:
        _keys_of_save.reset(token)


#: Where a stored state names its key (the library's compact JSON).
_KEY_OF_STATE = re.compile(rb'"__sealed__":\{"key":"([0-9a-f-]{36})"')


class SealingMapper(Mapper[UUID]):
    """The library's mapper, with each ticket's personal fields sealed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Set by the application once its datastore exists.
        self.keys: CachedKeys = CachedKeys(MemoryKeys())
        #: False: new events are stored in clear (old sealed ones still open).
        self.sealing = True

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        patterns = fields_of(type(domain_event))
        if not patterns or not self.sealing:
            return super().to_stored_event(domain_event)
        state = vars(domain_event)
        clear, paths, values = take_out(state, patterns)
        if not paths:
            return super().to_stored_event(domain_event)
        scope = _keys_of_save.get()
        if scope is None:
            raise NoKeyForSave(f"no key to seal ticket {domain_event.originator_id}")
        key = scope.key_for(domain_event.originator_id)
        clear[SEALED] = {
            "key": str(key.key_id),
            "paths": [list(p) for p in paths],
            "box": _seal(
                key.secret,
                self.transcoder.encode({"values": values}),
                _bound_to(domain_event.originator_id, domain_event.originator_version),
            ),
        }
        return super().to_stored_event(_with_state(domain_event, clear))

    def open_keys_of(self, stored_events: Iterable[StoredEvent]) -> None:
        """Have the keys of these events at hand, fetched in one go: a batch
        reader (a rebuild, the relay) calls it before opening each event."""
        found = (_KEY_OF_STATE.search(e.state) for e in stored_events)
        self.keys.prefetch({m.group(1).decode() for m in found if m})

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        event = super().to_domain_event(stored_event)
        state = vars(event)
        sealed = state.pop(SEALED, None)
        if sealed is None:
            return event
        paths = [tuple(p) for p in sealed["paths"]]
        key = self.keys.opened(sealed["key"])
        if key is None:
            opened = erased(state, paths)
        else:
            plain = _open(
                key.aead,
                sealed["box"],
                _bound_to(stored_event.originator_id, stored_event.originator_version),
            )
            opened = put_back(state, paths, self.transcoder.decode(plain)["values"])
        object.__setattr__(event, "__dict__", opened)
        return event


def _with_state(event: Any, state: dict[str, Any]) -> Any:
    """An event of the same class holding ``state`` (the original unchanged:
    its aggregate still uses it)."""
    copy = object.__new__(type(event))
    object.__setattr__(copy, "__dict__", state)
    return copy


def _bound_to(originator_id: Any, version: int) -> bytes:
    # Authenticated with the box: a sealed box copied onto another event
    # (or another version) fails to open instead of reading as its data.
    return f"{originator_id}:{version}".encode()


def _seal(secret: bytes, plain: bytes, bound_to: bytes) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(secret).encrypt(nonce, plain, bound_to)
    return base64.b64encode(nonce + box).decode("ascii")


def _open(aead: AESGCM, sealed: str, bound_to: bytes) -> bytes:
    raw = base64.b64decode(sealed)
    return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to)


#: Sealed bytes start with this, then the key's id (16 bytes), the nonce
#: and the box.
_BLOB_MAGIC = b"TKSEAL1\0"


def seal_blob(key: SubjectKey, plain: bytes, bound_to: bytes) -> bytes:
    """Bytes (an attachment) sealed with the key, naming it."""
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(key.secret).encrypt(nonce, plain, bound_to)
    return _BLOB_MAGIC + key.key_id.bytes + nonce + box


def sealed_blob_key(blob: bytes) -> UUID | None:
    """The key a blob was sealed with; None if it is not sealed."""
    if not blob.startswith(_BLOB_MAGIC):
        return None
    start = len(_BLOB_MAGIC)
    return UUID(bytes=blob[start : start + 16])


def open_blob(secret: bytes, blob: bytes, bound_to: bytes) -> bytes:
    start = len(_BLOB_MAGIC) + 16
    nonce, box = blob[start : start + _NONCE_BYTES], blob[start + _NONCE_BYTES :]
    return AESGCM(secret).decrypt(nonce, box, bound_to)

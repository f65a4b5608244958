"""Where attachment bytes live: PostgreSQL by default, or a directory.

Events carry only the metadata (name, type, size, sha256); the bytes are
kept here under the attachment's id.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol
from uuid import UUID

from dotmac.ticketing.store.application import TicketApplication
from dotmac.ticketing.store.sealing import open_blob, seal_blob, sealed_blob_key
from dotmac.ticketing.store.subject_keys import CachedKeys


class BlobStore(Protocol):
    def put(
        self,
        *,
        tenant_id: str,
        ticket_id: UUID,
        attachment_id: str,
        sha256: str,
        content: bytes,
    ) -> None: ...

    def get(self, *, tenant_id: str, attachment_id: str) -> bytes | None: ...

    def delete(self, *, tenant_id: str, attachment_id: str) -> None: ...


class PostgresBlobStore:
    """Bytes in the ``attachment_blobs`` table, backed up with everything else."""

    def __init__(self, app: TicketApplication) -> None:
        self._app = app

    def put(
        self,
        *,
        tenant_id: str,
        ticket_id: UUID,
        attachment_id: str,
        sha256: str,
        content: bytes,
    ) -> None:
        with self._app.transaction() as cursor:
            cursor.execute(
                "INSERT INTO attachment_blobs"
                " (tenant_id, attachment_id, ticket_id, sha256, content)"
                " VALUES (%s, %s, %s, %s, %s)"
                # The same id again is the same file (an idempotent retry).
                " ON CONFLICT DO NOTHING",
                (tenant_id, attachment_id, ticket_id, sha256, content),
            )

    def get(self, *, tenant_id: str, attachment_id: str) -> bytes | None:
        with self._app.transaction() as cursor:
            cursor.execute(
                "SELECT content FROM attachment_blobs"
                " WHERE tenant_id = %s AND attachment_id = %s",
                (tenant_id, attachment_id),
            )
            row = cursor.fetchone()
        return None if row is None else bytes(row["content"])

    def delete(self, *, tenant_id: str, attachment_id: str) -> None:
        with self._app.transaction() as cursor:
            cursor.execute(
                "DELETE FROM attachment_blobs"
                " WHERE tenant_id = %s AND attachment_id = %s",
                (tenant_id, attachment_id),
            )


class DirectoryBlobStore:
    """Bytes as files under ``root/<tenant>/<attachment id>``."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, tenant_id: str, attachment_id: str) -> Path:
        # Tenant ids come from verified tokens and attachment ids are ours
        # (hex), but a path must never escape the root whatever they hold.
        safe_tenant = tenant_id.encode().hex()
        return self._root / safe_tenant / Path(attachment_id).name

    def put(
        self,
        *,
        tenant_id: str,
        ticket_id: UUID,
        attachment_id: str,
        sha256: str,
        content: bytes,
    ) -> None:
        path = self._path(tenant_id, attachment_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(content)
        os.replace(partial, path)

    def get(self, *, tenant_id: str, attachment_id: str) -> bytes | None:
        path = self._path(tenant_id, attachment_id)
        return path.read_bytes() if path.exists() else None

    def delete(self, *, tenant_id: str, attachment_id: str) -> None:
        self._path(tenant_id, attachment_id).unlink(missing_ok=True)


class SealedBlobs:
    """Attachment bytes sealed with their ticket's key (``store.sealing``).

    Once the key is destroyed (an erasure) the bytes cannot be read, even
    from a backup; they are deleted as well. Bytes stored before sealing,
    or with it off, are read as they are.
    """

    def __init__(self, blobs: BlobStore, keys: CachedKeys, *, sealing: bool) -> None:
        self._blobs, self._keys, self._sealing = blobs, keys, sealing

    def put(
        self,
        *,
        tenant_id: str,
        ticket_id: UUID,
        attachment_id: str,
        sha256: str,
        content: bytes,
    ) -> None:
        key = self._keys.active_key(ticket_id) if self._sealing else None
        if key is not None:
            content = seal_blob(key, content, _bound(tenant_id, attachment_id))
        self._blobs.put(
            tenant_id=tenant_id,
            ticket_id=ticket_id,
            attachment_id=attachment_id,
            sha256=sha256,
            content=content,
        )

    def get(self, *, tenant_id: str, attachment_id: str) -> bytes | None:
        content = self._blobs.get(tenant_id=tenant_id, attachment_id=attachment_id)
        key_id = None if content is None else sealed_blob_key(content)
        if content is None or key_id is None:
            return content
        secret = self._keys.secret(key_id)
        if secret is None:  # erased
            return None
        return open_blob(secret, content, _bound(tenant_id, attachment_id))

    def delete(self, *, tenant_id: str, attachment_id: str) -> None:
        self._blobs.delete(tenant_id=tenant_id, attachment_id=attachment_id)


def _bound(tenant_id: str, attachment_id: str) -> bytes:
    return f"{tenant_id}:{attachment_id}".encode()

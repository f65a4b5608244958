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

"""The mail-in worker: every tenant's IMAP mailboxes, read as mail arrives.

One task per configured mailbox (``inbound_email.mailboxes`` of a tenant's
settings; the tenants that have any are listed in ``inbound_mail_tenants``).
A task logs in, takes each message not yet flagged ``$Ticketed`` through
:meth:`InboundMail.receive` and flags (or moves) it only after that stored
what it became, then waits in IDLE (or polls, on a server without it). A
crash between storing and flagging takes the message again on restart:
its mailbox UID (or its key) is known, so nothing happens twice.

A message that raises unexpectedly is tried again; after
``POISON_ATTEMPTS`` it is kept as a dead letter and flagged, so one message
never blocks its mailbox. A mailbox that cannot be reached is retried with
back-off, logged, and never stops the others. Settings changes are picked
up within ``rescan_seconds``: a changed mailbox's task is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from dotmac.ticketing.consumers.mail_in.imap_mailbox import (
    ImapMailbox,
    MailboxAddress,
    MailboxError,
)
from dotmac.ticketing.projections.read_model import ProjectionNotReady
from dotmac.ticketing.schemas.tenant_config import InboundEmailConfig, MailboxConfig
from dotmac.ticketing.service.bootstrap import Ticketing
from dotmac.ticketing.store import inbound_mail as rows
from dotmac.ticketing.store.inbound_mail import MailboxUid

log = structlog.get_logger(__name__)

MAIL_IN_NAME = "mail-in"
#: Unexpected failures of one message before it is kept as a dead letter.
POISON_ATTEMPTS = 3
BATCH = 50
BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class MailInConfig:
    ticketing: Callable[[], Ticketing]
    idle_seconds: float = 25.0
    poll_seconds: float = 30.0
    rescan_seconds: float = 5.0
    ca_file: str | None = None
    allow_private: bool = False


@dataclass
class _Reader:
    mailbox: MailboxConfig
    task: asyncio.Task[None]
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def run_mail_in(config: MailInConfig, stop: asyncio.Event) -> None:
    """Read every configured mailbox until ``stop`` is set."""
    core = await asyncio.to_thread(config.ticketing)
    readers: dict[tuple[str, str], _Reader] = {}
    try:
        while not stop.is_set():
            wanted = await asyncio.to_thread(_mailboxes, core)
            _restart_changed(core, config, readers, wanted)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(core.inbound.release_held)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), config.rescan_seconds)
    finally:
        for reader in readers.values():
            reader.stop.set()
        await asyncio.gather(
            *(r.task for r in readers.values()), return_exceptions=True
        )
        await asyncio.to_thread(core.close)


def _mailboxes(core: Ticketing) -> dict[tuple[str, str], MailboxConfig]:
    with core.app.transaction() as cur:
        tenants = rows.tenants_with_mailboxes(cur)
    found: dict[tuple[str, str], MailboxConfig] = {}
    for tenant_id in tenants:
        _, document = core.settings_service.get(tenant_id)
        section = InboundEmailConfig.model_validate(document.get("inbound_email") or {})
        for mailbox in section.mailboxes:
            found[(tenant_id, mailbox.name)] = mailbox
    return found


def _restart_changed(
    core: Ticketing,
    config: MailInConfig,
    readers: dict[tuple[str, str], _Reader],
    wanted: dict[tuple[str, str], MailboxConfig],
) -> None:
    for key in list(readers):
        if wanted.get(key) != readers[key].mailbox:
            readers.pop(key).stop.set()
    for key, mailbox in wanted.items():
        if key not in readers:
            reader_stop = asyncio.Event()
            task = asyncio.create_task(
                read_mailbox(core, config, key[0], mailbox, reader_stop),
                name=f"mail-in {key[0]}/{key[1]}",
            )
            readers[key] = _Reader(mailbox, task, reader_stop)


def refusal(mailbox: MailboxConfig, *, allow_private: bool) -> str | None:
    """Why the deployment does not read this mailbox, or None."""
    if allow_private:
        return None
    if mailbox.security == "plain":
        return "security plain is only for servers on private addresses"
    try:
        infos = socket.getaddrinfo(mailbox.host, mailbox.effective_port())
    except OSError as error:
        return f"{mailbox.host} does not resolve ({error})"
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address.is_private or address.is_loopback or address.is_link_local:
            return f"{mailbox.host} is a private address ({address})"
    return None


async def read_mailbox(
    core: Ticketing,
    config: MailInConfig,
    tenant_id: str,
    mailbox: MailboxConfig,
    stop: asyncio.Event,
) -> None:
    """Read one mailbox until ``stop``, reconnecting with back-off."""
    bound = log.bind(tenant_id=tenant_id, mailbox=mailbox.name, host=mailbox.host)
    refused = refusal(mailbox, allow_private=config.allow_private)
    if refused is not None:
        bound.error("mailbox not read", reason=refused)
        return
    address = MailboxAddress(
        host=mailbox.host,
        port=mailbox.effective_port(),
        security=mailbox.security,
        username=mailbox.username,
        password=mailbox.password or "",
        folder=mailbox.folder,
        processed_folder=mailbox.processed_folder,
        ca_file=config.ca_file,
    )
    failures: dict[int, int] = {}
    backoff = 1.0
    while not stop.is_set():
        imap = ImapMailbox(address)
        try:
            uidvalidity = await asyncio.to_thread(imap.open)
            bound.info("mailbox open", idle=imap.supports_idle)
            backoff = 1.0
            while not stop.is_set():
                taken = await _take_new(
                    core, tenant_id, mailbox.name, imap, uidvalidity, failures
                )
                if taken >= BATCH or stop.is_set():
                    continue
                await _wait_for_mail(imap, config, stop)
        except (MailboxError, OSError) as error:
            bound.warning("mailbox unavailable", error=str(error), retry_in=backoff)
        except ProjectionNotReady:
            bound.info("customers cannot be looked up yet; retrying", retry_in=backoff)
        except Exception:
            bound.exception("mailbox reader failed", retry_in=backoff)
        finally:
            await asyncio.to_thread(imap.close)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, BACKOFF_MAX)


async def _take_new(
    core: Ticketing,
    tenant_id: str,
    name: str,
    imap: ImapMailbox,
    uidvalidity: int,
    failures: dict[int, int],
) -> int:
    """Take the mailbox's unflagged messages (a batch); how many it saw."""
    uids = await asyncio.to_thread(imap.unprocessed, BATCH)
    for uid in uids:
        fetched = await asyncio.to_thread(imap.fetch, uid)
        if fetched is None:
            continue
        place = MailboxUid(name, uidvalidity, uid)
        try:
            receipt = await asyncio.to_thread(
                core.inbound.receive,
                tenant_id,
                fetched.raw,
                source=f"imap:{name}",
                uid=place,
            )
        except ProjectionNotReady:
            raise
        except Exception as error:
            failures[uid] = failures.get(uid, 0) + 1
            if failures[uid] < POISON_ATTEMPTS:
                raise
            log.exception("message kept as a dead letter", uid=uid, mailbox=name)
            receipt = await asyncio.to_thread(
                core.inbound.dead_letter,
                tenant_id,
                fetched.raw,
                source=f"imap:{name}",
                uid=place,
                reason=f"taking it failed {POISON_ATTEMPTS} times: {error!r}"[:500],
            )
        failures.pop(uid, None)
        await asyncio.to_thread(imap.mark_processed, uid)
        log.debug("message taken", uid=uid, outcome=receipt.outcome)
    return len(uids)


async def _wait_for_mail(
    imap: ImapMailbox, config: MailInConfig, stop: asyncio.Event
) -> None:
    if imap.supports_idle:
        await asyncio.to_thread(imap.wait_for_new, config.idle_seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), config.poll_seconds)

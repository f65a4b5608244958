"""What the notifier's ledger shares with the API: its wake-up channel, one query.

The ledger (``notification_deliveries``, migration 0001) is written by the
notifier and read by its dispatcher; the API touches it in two places — a
webhook resumed by an admin makes its waiting deliveries due at once and
wakes the dispatcher — so these live below both.
"""

from __future__ import annotations

#: ``NOTIFY`` channel that wakes the dispatcher when a delivery is due.
WAKE_CHANNEL = "notification_deliveries"

# A webhook back in service: its deliveries waiting out a back-off are due
# at once. Its lane as the ledger's generated column spells it (the index).
DUE_NOW = """
UPDATE notification_deliveries d SET next_attempt_at = now()
  FROM webhooks w
 WHERE w.id = %s AND d.lane = w.tenant_id || '|webhook|' || w.id::text
   AND d.status = 'pending' AND d.next_attempt_at > now()
"""

"""The staff record keeps the Microsoft 365 user found for the staff member's e-mail (and the
mailbox's time zone) for a while, so that a pass does not look the user up every time."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sync.ports import MailboxUser
from sync.staff_record import StaffRecord
from sync.timezones import UTC_NAME

MAILBOX_CACHE: Final = timedelta(hours=12)


def cached_mailbox(record: StaffRecord, email: str, now: datetime) -> MailboxUser | None:
    """The user the record found for `email`, while that finding is recent; else None."""
    cached = record.mailbox
    if (
        cached.user_id
        and cached.email.casefold() == email.casefold()
        and cached.resolved_at is not None
        and now - cached.resolved_at < MAILBOX_CACHE
    ):
        return MailboxUser(cached.user_id, cached.time_zone or UTC_NAME)
    return None

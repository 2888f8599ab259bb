"""What Graph answers that is not a success, in the service's error vocabulary (`sync.errors`).

Only `ErrorItemNotFound` means an event is gone (graph/FACTS.md): any other 404 on a mailbox
request means Graph cannot serve that mailbox (on-premises in a hybrid tenant, unlicensed,
inactive), which no retry heals and an administrator must look at.
"""

from __future__ import annotations

from sync.errors import Permanent, Retryable, Source


class GraphRetryable(Retryable):
    """Throttled (429), temporarily unavailable (5xx) or a transport failure."""

    source: Source = "graph"
    # True only when no attempt of the request can have been applied: every one was refused
    # with a 429 (or held back before it was sent). A 5xx or a lost connection may follow a
    # write Graph made, so a caller that undoes its bookkeeping on a refusal asks this.
    never_applied: bool = False


class AccessDenied(Permanent):
    """401/403: the app may not use this mailbox (e.g. outside its Exchange RBAC scope)."""

    source: Source = "graph"


class MailboxUnreachable(Permanent):
    """404 other than `ErrorItemNotFound`: the user exists but Graph cannot serve the mailbox."""

    source: Source = "graph"


class GraphRefused(Permanent):
    """Another 4xx: Graph refused the request itself."""

    source: Source = "graph"

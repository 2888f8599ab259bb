"""What can go wrong talking to Graph, in the service's terms."""

from __future__ import annotations


class GraphFailure(Exception):
    """Base class. Messages carry status codes and Graph error codes only, never content."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RetryLater(GraphFailure):
    """Throttled (429) or temporarily unavailable (5xx, transport): try again after `delay`."""

    def __init__(self, delay: float, status: int | None, code: str | None = None) -> None:
        super().__init__(f"Graph asked to retry after {delay:.1f} s", status, code)
        self.delay = delay


class NotFound(GraphFailure):
    """404: the user or event does not exist (e.g. an event deleted in Outlook)."""


class AccessDenied(GraphFailure):
    """401/403: the app may not touch this mailbox (e.g. outside its Exchange RBAC scope)."""


class Rejected(GraphFailure):
    """Another 4xx: the request itself was refused."""


class SyncStateGone(GraphFailure):
    """410 / syncStateNotFound: the delta token is no longer valid; resync from scratch."""

"""One error vocabulary for everything the service talks to: Graph, Coconut and storage.

Every adapter translates what its service answered into one of these, so the worker decides with
two questions only: will it heal by itself (retry later), or must a person act (a reason to show)?

```
SyncError                      status codes, error codes and ids only: never content
├── Retryable                  transient; try again after `delay` seconds
│   ├── StorageUnavailable     Table/Queue Storage unreachable or 5xx
│   ├── CoconutUnavailable     Coconut 429/5xx/unreachable (sync.coconut.api)
│   └── GraphRetryable         Graph 429/5xx/transport (sync.graph.requests)
├── Permanent                  will not heal by retrying; `reason` says what to do
│   ├── AccessDenied           Graph 401/403: the app may not use this mailbox
│   ├── MailboxUnreachable     Graph 404 other than ErrorItemNotFound: no mailbox behind the user
│   ├── GraphRefused           another Graph 4xx
│   ├── CoconutRefused         Coconut 4xx (key refused, unknown user, body rejected, bad answer)
│   ├── RecordTooLarge         an item's desired state does not fit one Table entity
│   └── ContentUnreadable      an item's stored content does not decrypt (wrong or rotated key)
├── answers a caller expects and handles where it calls (neither retried nor shown):
│   ├── EventGone              Graph 404 ErrorItemNotFound: the event no longer exists
│   ├── DeltaExpired           Graph 410 / syncStateNotFound: start a new delta round
│   └── ConcurrentUpdate       a storage compare-and-swap lost: read again and decide again
└── FunctionFailed             what leaves a function in place of another library's exception
                               (`sync.tracing`): its type, without its message
```

The source-specific classes live beside their adapters; this module holds the tree's roots and
the classes shared by more than one adapter.
"""

from __future__ import annotations

from typing import Literal

Source = Literal["graph", "coconut", "storage"]


class SyncError(Exception):
    """Base class. The message is safe to log: it never holds names, e-mails or notes."""

    source: Source = "storage"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Retryable(SyncError):
    """A transient failure: the same request may succeed after `delay` seconds."""

    def __init__(
        self, message: str, delay: float, *, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.delay = max(0.0, delay)


class Permanent(SyncError):
    """A failure that retrying will not heal; `str(error)` is the reason shown to an
    administrator, saying what is wrong and what to check."""


class StorageUnavailable(Retryable):
    """Table/Queue Storage could not be reached or answered with a server error."""

    source: Source = "storage"

    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message, delay)


class RecordTooLarge(Permanent):
    """An item's desired state does not fit one Table entity, even compressed."""


class ContentUnreadable(Permanent):
    """An item's stored content cannot be decrypted with the configured data keys: the key is
    wrong, was rotated without keeping the old one as SYNC_DATA_KEY_PREVIOUS, or the row was
    altered. The message names the item and the key id, never content."""

    def __init__(self, item_key: str, why: str) -> None:
        super().__init__(
            f"the stored content of {item_key} cannot be decrypted ({why}): SYNC_DATA_KEY may "
            "be wrong, or rotated without the old key in SYNC_DATA_KEY_PREVIOUS"
        )
        self.item_key = item_key


class ConcurrentUpdate(SyncError):
    """A compare-and-swap lost to another writer (ETag mismatch, or the entity already exists):
    the caller reads again and decides again."""


class EventGone(SyncError):
    """Graph answered 404 `ErrorItemNotFound`: the event no longer exists."""

    source: Source = "graph"


class DeltaExpired(SyncError):
    """Graph no longer knows the delta token (410 / syncStateNotFound): start a new round."""

    source: Source = "graph"


class FunctionFailed(SyncError):
    """Raised at a function's edge in place of an exception that is not the service's own: the
    Functions host reports a failed invocation's exception, message included, to Application
    Insights, and another library's message may quote what it was given (pydantic's does)."""

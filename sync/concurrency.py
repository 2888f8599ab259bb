"""Running several requests at once without leaving any behind.

`asyncio.gather` hands back the first failure while the other requests go on running unseen:
after a worker gave its lease back, they could still write to the calendar or the links. Here
every request finishes (or fails) before the caller goes on, and then the failure that matters
most is raised: a `Retryable` first (the whole run is retried soon and redoes the rest), else
the first other one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from sync.errors import Retryable

T = TypeVar("T")


async def all_settled(work: Iterable[Awaitable[T]]) -> list[T]:
    """The results in order, once every awaitable has finished."""
    results = await asyncio.gather(*work, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        retryable = [f for f in failures if isinstance(f, Retryable)]
        raise (retryable or failures)[0]
    return [r for r in results if not isinstance(r, BaseException)]

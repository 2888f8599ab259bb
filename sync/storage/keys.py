"""Table Storage keys from domain ids.

PartitionKey/RowKey may not contain `/ \\ # ?` or control characters, and ids come from Coconut and
Graph unchecked; percent-encoding those characters (and `%` itself) keeps keys reversible.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "/\\#?%")


def table_key(value: str) -> str:
    """A valid PartitionKey/RowKey that maps back to `value` with `from_table_key`."""
    return quote(value, safe=_SAFE)


def from_table_key(key: str) -> str:
    return unquote(key)

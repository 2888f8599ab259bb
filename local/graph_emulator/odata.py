"""The OData query options and `Prefer` values the calendar subset understands."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from local.graph_emulator.errors import GraphError, bad_request
from local.graph_emulator.timezones import zone_for

DEFAULT_PAGE_SIZE = 10  # Graph's default page size for event collections
MAX_PAGE_SIZE = 1000

_LITERAL = r"'((?:[^']|'')*)'"


@dataclass(frozen=True)
class Preferences:
    """What the client asked for with `Prefer` headers (each may appear once or comma-joined)."""

    timezone: str | None = None
    body_text: bool = False
    max_page_size: int | None = None
    immutable_ids: bool = False

    def applied(self) -> str | None:
        parts = []
        if self.timezone:
            parts.append(f'outlook.timezone="{self.timezone}"')
        if self.body_text:
            parts.append('outlook.body-content-type="text"')
        if self.max_page_size:
            parts.append(f"odata.maxpagesize={self.max_page_size}")
        if self.immutable_ids:
            parts.append('IdType="ImmutableId"')
        return ", ".join(parts) or None


def parse_prefer(values: Iterable[str]) -> Preferences:
    found: dict[str, str] = {}
    for header in values:
        for item in _split_outside_quotes(header, ","):
            key, _, value = item.strip().partition("=")
            found[key.strip().lower()] = value.strip().strip('"')
    timezone = found.get("outlook.timezone")
    if timezone is not None and zone_for(timezone) is None:
        timezone = None  # Graph ignores a zone it does not know and answers in UTC
    page: int | None = None
    raw_page = found.get("odata.maxpagesize")
    if raw_page and raw_page.isdigit() and int(raw_page) > 0:
        page = int(raw_page)
    return Preferences(
        timezone=timezone,
        body_text=found.get("outlook.body-content-type", "").lower() == "text",
        max_page_size=page,
        immutable_ids=found.get("idtype", "").lower() == "immutableid",
    )


class QueryOptions:
    """Query-string options; Graph matches option names case-insensitively."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, str] = {}
        for key, value in items:
            self._values.setdefault(key.lower(), value)

    def get(self, name: str) -> str | None:
        return self._values.get(name.lower())

    def has(self, name: str) -> bool:
        return name.lower() in self._values

    def names(self) -> list[str]:
        return list(self._values)

    def page(self, prefs: Preferences) -> tuple[int, int]:
        """(skip, page size) from `$skip`, `$top` and `Prefer: odata.maxpagesize`."""
        top = _non_negative_int(self.get("$top"), "$top")
        skip = _non_negative_int(self.get("$skip"), "$skip") or 0
        size = top or prefs.max_page_size or DEFAULT_PAGE_SIZE
        return skip, min(size, MAX_PAGE_SIZE)


def _non_negative_int(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise bad_request(f"Invalid value '{raw}' for query option '{name}'.")
    return int(raw)


@dataclass(frozen=True)
class PropertyMatch:
    """`singleValueExtendedProperties/any(ep: ep/id eq '…' and ep/value eq '…')`."""

    property_id: str
    value: str | None


def parse_extended_property_filter(text: str) -> PropertyMatch:
    lambda_match = re.fullmatch(
        r"\s*singleValueExtendedProperties/any\(\s*([A-Za-z_]\w*)\s*:(.*)\)\s*",
        text,
        flags=re.IGNORECASE | re.DOTALL,
    )
    if lambda_match is None:
        raise unsupported_filter()
    variable, body = lambda_match.group(1), lambda_match.group(2)
    fields: dict[str, str] = {}
    for clause in _split_outside_quotes(body, " and "):
        clause_match = re.fullmatch(
            rf"\s*{re.escape(variable)}/(id|value)\s+eq\s+{_LITERAL}\s*",
            clause,
            flags=re.IGNORECASE | re.DOTALL,
        )
        if clause_match is None or clause_match.group(1).lower() in fields:
            raise unsupported_filter()
        fields[clause_match.group(1).lower()] = _unquote(clause_match.group(2))
    if "id" not in fields:
        raise unsupported_filter()
    return PropertyMatch(property_id=fields["id"], value=fields.get("value"))


def parse_user_filter(text: str) -> tuple[str, str]:
    """`mail eq '…'` or `userPrincipalName eq '…'` → (property, value)."""
    match = re.fullmatch(
        rf"\s*(mail|userPrincipalName|id)\s+eq\s+{_LITERAL}\s*", text, flags=re.IGNORECASE
    )
    if match is None:
        raise GraphError(
            400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause."
        )
    return match.group(1).lower(), _unquote(match.group(2))


def unsupported_filter() -> GraphError:
    return GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter is not supported.")


@dataclass(frozen=True)
class PropertySelection:
    """Which extended properties `$expand` asked for; `ids is None` means all of them."""

    ids: frozenset[str] | None


@dataclass(frozen=True)
class Expansion:
    single: PropertySelection | None = None
    multi: PropertySelection | None = None
    attachments: bool = False
    calendar: bool = False  # the calendar (or Deleted Items folder) holding the event


def parse_expand(text: str | None) -> Expansion:
    if not text:
        return Expansion()
    single: PropertySelection | None = None
    multi: PropertySelection | None = None
    attachments = False
    calendar = False
    for item in _split_outside_parens(text):
        match = re.fullmatch(r"\s*(\w+)\s*(?:\((.*)\))?\s*", item, flags=re.DOTALL)
        if match is None:
            raise bad_request("Invalid $expand.")
        name, options = match.group(1).lower(), match.group(2)
        if name == "singlevalueextendedproperties":
            single = _property_selection(options)
        elif name == "multivalueextendedproperties":
            multi = _property_selection(options)
        elif name == "attachments" and not options:
            attachments = True
        elif name == "calendar" and not options:
            calendar = True
        else:
            raise bad_request(
                f"Could not find a property named '{match.group(1)}' on type "
                "'microsoft.graph.event'."
            )
    return Expansion(single=single, multi=multi, attachments=attachments, calendar=calendar)


def _property_selection(options: str | None) -> PropertySelection:
    if not options or not options.strip():
        return PropertySelection(ids=None)
    option = re.fullmatch(r"\s*\$filter\s*=(.*)", options, flags=re.IGNORECASE | re.DOTALL)
    if option is None:
        raise bad_request("Only $filter is supported inside $expand of extended properties.")
    ids = []
    for clause in _split_outside_quotes(option.group(1), " or "):
        match = re.fullmatch(rf"\s*id\s+eq\s+{_LITERAL}\s*", clause, flags=re.IGNORECASE)
        if match is None:
            raise unsupported_filter()
        ids.append(normalize_property_id(_unquote(match.group(1))))
    return PropertySelection(ids=frozenset(ids))


def parse_select(text: str | None, known: Iterable[str]) -> list[str] | None:
    if not text:
        return None
    by_lower = {name.lower(): name for name in known}
    selected = []
    for raw in text.split(","):
        name = raw.strip()
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise bad_request(f"Could not find a property named '{name}' on type 'event'.")
        selected.append(canonical)
    return selected


def normalize_property_id(property_id: str) -> str:
    """Extended-property ids compare case-insensitively except the named property's name."""
    parts = property_id.split()
    out = []
    keep_next = False
    for part in parts:
        if keep_next:
            out.append(part)
            keep_next = False
            continue
        out.append(part.lower())
        keep_next = part.lower() == "name"
    return " ".join(out)


def _unquote(literal: str) -> str:
    return literal.replace("''", "'")


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    """Split on `separator` (matched case-insensitively) where it is not inside '…' or "…"."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    index = 0
    lowered = text.lower()
    sep = separator.lower()
    while index < len(text):
        char = text[index]
        if quote is None and lowered.startswith(sep, index):
            parts.append("".join(current))
            current = []
            index += len(sep)
            continue
        if quote is None and char in "'\"":
            quote = char
        elif quote == char:
            quote = None
        current.append(char)
        index += 1
    parts.append("".join(current))
    return parts


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    quote = False
    current: list[str] = []
    for char in text:
        if char == "'":
            quote = not quote
        elif not quote and char == "(":
            depth += 1
        elif not quote and char == ")":
            depth -= 1
        elif not quote and depth == 0 and char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def header_lookup(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None

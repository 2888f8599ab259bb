"""The rules an external-event PUT body must follow (contracts/coconut-api.md), as 422 problems.

Stricter than a lenient server on purpose: anything beyond the five documented attributes is
refused, because the only reason to send more would be leaking a staff member's private event
content into Coconut.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from local.coconut_emulator.jsonapi import Problem

RESOURCE_TYPE = "external-events"
TITLE = "Busy"
SHOW_AS = frozenset({"busy", "tentative", "oof"})
ATTRIBUTES = frozenset({"title", "start", "end", "all_day", "show_as"})
MAX_EXTERNAL_ID_LENGTH = 255

# RFC 3339 instant in UTC, written with "Z" (no numeric offset, not lower-case "z").
_UTC_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z", re.ASCII)


def external_id_problems(external_id: str) -> list[Problem]:
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        return [Problem(f"external id is longer than {MAX_EXTERNAL_ID_LENGTH} characters")]
    return []


def body_problems(body: Any, external_id: str) -> list[Problem]:
    """Every rule the body breaks; empty when it is a valid create-or-replace."""
    if not isinstance(body, dict):
        return [Problem("the body must be a JSON object", pointer="")]
    problems = [
        Problem(f"unexpected member {name!r}", pointer="") for name in body if name != "data"
    ]
    data = body.get("data")
    if not isinstance(data, dict):
        return [*problems, Problem("data must be an object", pointer="/data")]
    for name in data:
        if name not in {"type", "id", "attributes"}:
            problems.append(Problem(f"unexpected member {name!r}", pointer="/data"))
    if data.get("type") != RESOURCE_TYPE:
        problems.append(Problem(f"type must be {RESOURCE_TYPE!r}", pointer="/data/type"))
    if data.get("id") != external_id:
        problems.append(Problem("id must equal the external id in the path", pointer="/data/id"))
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        return [*problems, Problem("attributes must be an object", pointer="/data/attributes")]
    return problems + _attribute_problems(attributes)


def _attribute_problems(attributes: dict[str, Any]) -> list[Problem]:
    pointer = "/data/attributes"
    problems = [
        Problem(
            "description is never accepted" if name == "description" else "unknown attribute",
            pointer=f"{pointer}/{name}",
        )
        for name in attributes
        if name not in ATTRIBUTES
    ]
    problems += [
        Problem("attribute is required", pointer=f"{pointer}/{name}")
        for name in sorted(ATTRIBUTES - attributes.keys())
    ]
    if "title" in attributes and attributes["title"] != TITLE:
        problems.append(Problem(f"title must be {TITLE!r}", pointer=f"{pointer}/title"))
    if "show_as" in attributes and attributes["show_as"] not in SHOW_AS:
        problems.append(
            Problem("show_as must be busy, tentative or oof", pointer=f"{pointer}/show_as")
        )
    if "all_day" in attributes and not isinstance(attributes["all_day"], bool):
        problems.append(Problem("all_day must be a boolean", pointer=f"{pointer}/all_day"))
    start = _instant(attributes, "start", problems)
    end = _instant(attributes, "end", problems)
    if start is not None and end is not None and end <= start:
        problems.append(Problem("end must be after start", pointer=f"{pointer}/end"))
    return problems


def _instant(attributes: dict[str, Any], name: str, problems: list[Problem]) -> datetime | None:
    if name not in attributes:
        return None
    value = attributes[name]
    instant = parse_utc_instant(value) if isinstance(value, str) else None
    if instant is None:
        problems.append(
            Problem(
                f"{name} must be a UTC RFC 3339 instant ending in Z",
                pointer=f"/data/attributes/{name}",
            )
        )
    return instant


def parse_utc_instant(text: str) -> datetime | None:
    if _UTC_INSTANT.fullmatch(text) is None:
        return None
    try:
        # fromisoformat checks the calendar (no 31 February) and reads "Z" as UTC.
        return datetime.fromisoformat(text)
    except ValueError:
        return None

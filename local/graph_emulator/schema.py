"""Request-body validation against Microsoft Graph's v1.0 metadata (CSDL).

The emulator checks every body it receives the way Graph's OData reader does: property names must
be declared on the type (or a base type), values must have the declared EDM type, enum values must
name members, and nested complex values and deep-inserted entities are checked recursively. Error
messages follow Graph's wording and name the offending property path; they never repeat a string
value that could be personal data (only enum literals and type names, which are vocabulary).

Deliberate choices, each matching what Graph does rather than the letter of the CSDL:
- `OpenType` is honoured on complex types only: `event` and `user` are marked open, but Exchange
  rejects unknown properties on them.
- Enum members and action parameter names match case-insensitively: Microsoft's own examples send
  `"Thursday"` for `dayOfWeek` and both `"comment"` and `"Comment"` to `event: cancel`.
- Entity and complex property names match exactly, as the SDKs send them.
- Required properties are not checked: Graph requires none on POST either.
- A collection-valued property is never `null` (OData: `Nullable` on a collection applies to its
  items), as Graph's reader rejects it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

SUBSET_PATH: Final = Path(__file__).with_name("metadata") / "graph-v1.0-subset.xml"

_EDM_NS = "{http://docs.oasis-open.org/odata/ns/edm}"
_ODATA_TYPE = "@odata.type"
# Literals echoed in messages must look like vocabulary, so a misplaced value (a name, an address)
# never reaches an error body or a log line.
_ECHOABLE = re.compile(r"^#?[A-Za-z][A-Za-z0-9_.]{0,127}$")
_ENUM_LITERAL = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,63}(?:\s*,\s*[A-Za-z][A-Za-z0-9]{0,63}){0,15}$")


class InvalidBody(Exception):
    """A request body Graph would reject with 400 `RequestBodyRead`; `str()` is Graph's message."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A property's declared type. For a collection, `nullable` is about its items."""

    name: str
    collection: bool
    nullable: bool

    def __str__(self) -> str:
        return f"Collection({self.name})" if self.collection else self.name


@dataclass(frozen=True, slots=True)
class Member:
    """A structural property, a navigation property or an action parameter."""

    name: str
    type: TypeRef
    navigation: bool = False


@dataclass(frozen=True, slots=True)
class StructuredType:
    name: str
    base: str | None
    is_entity: bool
    is_open: bool
    declared: Mapping[str, Member]


@dataclass(frozen=True, slots=True)
class EnumType:
    name: str
    members: frozenset[str]  # lower-cased, since Graph matches them case-insensitively
    is_flags: bool


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    parameters: Mapping[str, Member]  # keyed by lower-cased name; binding parameter excluded


# --- EDM primitive values ----------------------------------------------------------------------

_DATE_TIME_OFFSET = re.compile(
    r"^-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,12})?)?(?:Z|[+-]\d{2}:\d{2})$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_OF_DAY = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.\d{1,12})?)?$")
_GUID = re.compile(r"^[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$")
_DURATION = re.compile(r"^-?P(?=\d|T\d)(?:\d+D)?(?:T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$")
_INT_RANGES: Final = {
    "Edm.Byte": (0, 2**8 - 1),
    "Edm.SByte": (-(2**7), 2**7 - 1),
    "Edm.Int16": (-(2**15), 2**15 - 1),
    "Edm.Int32": (-(2**31), 2**31 - 1),
    "Edm.Int64": (-(2**63), 2**63 - 1),
}


def _is_int_in(bounds: tuple[int, int]) -> Callable[[object], bool]:
    low, high = bounds
    # bool is an int in Python but a different JSON type.
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    # OData JSON writes the IEEE 754 specials as strings.
    return value in ("NaN", "INF", "-INF")


def _is_date_time_offset(value: object) -> bool:
    if not isinstance(value, str) or not _DATE_TIME_OFFSET.match(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_binary(value: object) -> bool:
    if not isinstance(value, str):
        return False
    # OData JSON specifies base64url; Graph also takes standard base64 (e.g. contentBytes).
    normalized = value.replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(normalized + "=" * (-len(normalized) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _matches(pattern: re.Pattern[str]) -> Callable[[object], bool]:
    return lambda v: isinstance(v, str) and pattern.match(v) is not None


_PRIMITIVES: Final[Mapping[str, Callable[[object], bool]]] = {
    "Edm.String": lambda v: isinstance(v, str),
    "Edm.Boolean": lambda v: isinstance(v, bool),
    **{name: _is_int_in(bounds) for name, bounds in _INT_RANGES.items()},
    "Edm.Double": _is_number,
    "Edm.Single": _is_number,
    "Edm.Decimal": _is_number,
    "Edm.DateTimeOffset": _is_date_time_offset,
    "Edm.Date": _is_date,
    "Edm.TimeOfDay": _matches(_TIME_OF_DAY),
    "Edm.Guid": _matches(_GUID),
    "Edm.Binary": _is_binary,
    "Edm.Duration": _matches(_DURATION),
}


# --- messages ----------------------------------------------------------------------------------


def _node(value: object) -> str:
    if isinstance(value, dict):
        return "StartObject"
    if isinstance(value, list):
        return "StartArray"
    return "PrimitiveValue"


def _unexpected_node(value: object, expected: str, path: str) -> InvalidBody:
    where = f" for property named '{path}'" if path else ""
    return InvalidBody(
        f"An unexpected '{_node(value)}' node was found{where} when reading from the JSON reader."
        f" A '{expected}' node was expected.",
        path,
    )


def _with_path(message: str, path: str) -> InvalidBody:
    return InvalidBody(f"{message} Path: '{path}'." if path else message, path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- the schema --------------------------------------------------------------------------------


class GraphSchema:
    """Graph's types as declared in a CSDL document, and body validation against them."""

    def __init__(
        self,
        structured: Mapping[str, StructuredType],
        enums: Mapping[str, EnumType],
        actions: Mapping[str, Action],
        aliases: Mapping[str, str],
    ) -> None:
        self._structured = dict(structured)
        self._enums = dict(enums)
        self._actions = dict(actions)
        self._aliases = dict(aliases)
        # Flattened once so that each property lookup during validation is one dict access.
        self._properties = {name: self._flatten(name) for name in self._structured}

    @classmethod
    def load(cls) -> GraphSchema:
        """The schema of the metadata subset shipped with the emulator, parsed once per process."""
        return _shipped_schema()

    @classmethod
    def from_csdl(cls, document: str | bytes) -> GraphSchema:
        """Parse a CSDL (OData v4 `$metadata`) document."""
        root = ET.fromstring(document)  # noqa: S314 - trusted, repository-owned metadata
        schemas = list(root.iter(f"{_EDM_NS}Schema"))
        aliases = {s.attrib["Alias"]: s.attrib["Namespace"] for s in schemas if "Alias" in s.attrib}

        def qualify(reference: str) -> str:
            prefix, _, name = reference.rpartition(".")
            return f"{aliases.get(prefix, prefix)}.{name}"

        def type_ref(element: ET.Element) -> TypeRef:
            declared = element.attrib["Type"]
            collection = declared.startswith("Collection(")
            inner = declared[len("Collection(") : -1] if collection else declared
            return TypeRef(
                name=inner if inner.startswith("Edm.") else qualify(inner),
                collection=collection,
                nullable=element.attrib.get("Nullable", "true") != "false",
            )

        structured: dict[str, StructuredType] = {}
        enums: dict[str, EnumType] = {}
        actions: dict[str, Action] = {}
        for schema in schemas:
            namespace = schema.attrib["Namespace"]
            for element in schema:
                tag = element.tag.removeprefix(_EDM_NS)
                name = f"{namespace}.{element.attrib.get('Name', '')}"
                if tag in ("EntityType", "ComplexType"):
                    declared = {
                        child.attrib["Name"]: Member(
                            name=child.attrib["Name"],
                            type=type_ref(child),
                            navigation=child.tag == f"{_EDM_NS}NavigationProperty",
                        )
                        for child in element
                        if child.tag in (f"{_EDM_NS}Property", f"{_EDM_NS}NavigationProperty")
                    }
                    base = element.attrib.get("BaseType")
                    structured[name] = StructuredType(
                        name=name,
                        base=qualify(base) if base else None,
                        is_entity=tag == "EntityType",
                        is_open=element.attrib.get("OpenType") == "true",
                        declared=declared,
                    )
                elif tag == "EnumType":
                    enums[name] = EnumType(
                        name=name,
                        members=frozenset(
                            m.attrib["Name"].lower() for m in element.iter(f"{_EDM_NS}Member")
                        ),
                        is_flags=element.attrib.get("IsFlags") == "true",
                    )
                elif tag == "Action":
                    if name in actions:
                        raise ValueError(f"action {name} is declared more than once")
                    parameters = element.findall(f"{_EDM_NS}Parameter")
                    if element.attrib.get("IsBound") == "true":
                        parameters = parameters[1:]  # the binding parameter is the URL, not body
                    actions[name] = Action(
                        name=name,
                        parameters={
                            p.attrib["Name"].lower(): Member(p.attrib["Name"], type_ref(p))
                            for p in parameters
                        },
                    )
        return cls(structured, enums, actions, aliases)

    # --- public checks -------------------------------------------------------------------------

    def validate(self, type_name: str, body: object, *, partial: bool = False) -> None:
        """Check a POST (or, with `partial`, PATCH) body for an entity or complex type.

        `type_name` is `event`, `graph.event` or `microsoft.graph.event`. PATCH follows the same
        rules as POST (Graph checks no required properties on either); `partial` documents intent.
        Raises `InvalidBody`; raises `LookupError` for a type the metadata does not declare.
        """
        del partial  # same rules; see the docstring
        qualified = self._resolve_name(type_name)
        if qualified not in self._structured:
            raise LookupError(f"type {type_name!r} is not an entity or complex type of the schema")
        if not isinstance(body, dict):
            raise _unexpected_node(body, "StartObject", "")
        self._check_structured(qualified, body, "")

    def validate_action(self, action_name: str, body: object) -> None:
        """Check an action body such as `cancel`'s; parameter names match case-insensitively."""
        action = self._actions.get(self._resolve_name(action_name))
        if action is None:
            raise LookupError(f"action {action_name!r} is not declared in the schema")
        if not isinstance(body, dict):
            raise _unexpected_node(body, "StartObject", "")
        for key, value in body.items():
            if key.startswith("@"):
                continue  # instance annotations
            parameter = action.parameters.get(key.lower())
            if parameter is None:
                raise InvalidBody(
                    f"The parameter '{key}' in the request payload is not a valid parameter for"
                    f" the operation '{action.name.rpartition('.')[2]}'.",
                    key,
                )
            self._check_value(parameter.type, value, key)

    # --- internals -----------------------------------------------------------------------------

    def _resolve_name(self, name: str) -> str:
        name = name.removeprefix("#")
        if "." not in name:
            return f"microsoft.graph.{name}"
        prefix, _, short = name.rpartition(".")
        return f"{self._aliases.get(prefix, prefix)}.{short}"

    def _flatten(self, name: str) -> dict[str, Member]:
        chain: list[StructuredType] = []
        current: str | None = name
        while current is not None:
            definition = self._structured.get(current)
            if definition is None:
                raise ValueError(f"base type {current} of {name} is not in the schema")
            chain.append(definition)
            current = definition.base
        properties: dict[str, Member] = {}
        for definition in reversed(chain):  # derived declarations win over base ones
            properties.update(definition.declared)
        return properties

    def _derives_from(self, name: str, ancestor: str) -> bool:
        current: str | None = name
        while current is not None:
            if current == ancestor:
                return True
            current = self._structured[current].base
        return False

    def _actual_type(self, declared: str, body: Mapping[str, object], path: str) -> str:
        """The type a structured value is read as: the declared one or its `@odata.type`."""
        named = body.get(_ODATA_TYPE)
        if named is None:
            return declared
        where = _join(path, _ODATA_TYPE)
        if not isinstance(named, str):
            raise _unexpected_node(named, "PrimitiveValue", where)
        if not _ECHOABLE.match(named):
            raise _with_path("The type name in '@odata.type' is not a valid type name.", where)
        actual = self._resolve_name(named)
        if actual not in self._structured:
            raise _with_path(
                f"A type named '{named}' could not be resolved by the model. When a model is"
                " available, each type name must resolve to a valid type.",
                where,
            )
        if not self._derives_from(actual, declared):
            raise _with_path(
                f"An incompatible type '{actual}' was found for an item. The expected type is"
                f" '{declared}' or a type derived from it.",
                where,
            )
        return actual

    def _check_structured(self, declared: str, body: Mapping[str, object], path: str) -> None:
        type_name = self._actual_type(declared, body, path)
        properties = self._properties[type_name]
        is_open = not self._structured[type_name].is_entity and self._structured[type_name].is_open
        for key, value in body.items():
            if "@" in key:
                continue  # instance (`@odata.etag`) and property (`start@odata.type`) annotations
            member = properties.get(key)
            where = _join(path, key)
            if member is None:
                if is_open:
                    continue
                message = f"The property '{key}' does not exist on type '{type_name}'."
                raise _with_path(message, where) if path else InvalidBody(message, where)
            self._check_value(member.type, value, where)

    def _check_value(self, declared: TypeRef, value: object, path: str) -> None:
        if declared.collection:
            if value is None:
                raise self._null_not_allowed(declared, path)
            if not isinstance(value, list):
                raise _unexpected_node(value, "StartArray", path)
            item_type = TypeRef(declared.name, collection=False, nullable=declared.nullable)
            for index, item in enumerate(value):
                self._check_single(item_type, item, f"{path}[{index}]")
        else:
            self._check_single(declared, value, path)

    def _check_single(self, declared: TypeRef, value: object, path: str) -> None:
        if value is None:
            if not declared.nullable:
                raise self._null_not_allowed(declared, path)
            return
        name = declared.name
        if name in self._structured:
            if not isinstance(value, dict):
                raise _unexpected_node(value, "StartObject", path)
            self._check_structured(name, value, path)
            return
        if isinstance(value, dict | list):
            raise _unexpected_node(value, "PrimitiveValue", path)
        enum = self._enums.get(name)
        if enum is not None:
            self._check_enum(enum, value, path)
            return
        is_valid = _PRIMITIVES.get(name)
        # Types without a checker (Edm.Stream, Edm.Untyped, spatial) take any primitive value.
        if is_valid is not None and not is_valid(value):
            raise _with_path(
                f"Cannot convert a primitive value to the expected type '{name}'.", path
            )

    @staticmethod
    def _check_enum(enum: EnumType, value: object, path: str) -> None:
        if isinstance(value, str):
            # Flags enums take several members separated by commas ("a, b").
            literals = value.split(",") if enum.is_flags else [value]
            if all(literal.strip().lower() in enum.members for literal in literals):
                return
            if _ENUM_LITERAL.match(value):
                raise _with_path(
                    f"Cannot convert the literal '{value}' to the expected type '{enum.name}'.",
                    path,
                )
        raise _with_path(f"Cannot convert the literal to the expected type '{enum.name}'.", path)

    @staticmethod
    def _null_not_allowed(declared: TypeRef, path: str) -> InvalidBody:
        expected = f"{declared}[Nullable=False]"
        return InvalidBody(
            f"A null value was found for the property named '{path}', which has the expected type"
            f" '{expected}'. The expected type '{expected}' does not allow null values.",
            path,
        )


@functools.cache
def _shipped_schema() -> GraphSchema:
    return GraphSchema.from_csdl(SUBSET_PATH.read_bytes())

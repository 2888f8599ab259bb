"""Reads Bicep templates into plain Python values so tests can state facts about them.

Parsing uses tree-sitter-bicep. Literals (strings without interpolation, numbers, booleans, null,
objects, arrays) become Python values; anything evaluated at deployment time (references,
function calls, interpolated strings, conditions) becomes an `Expr` that keeps its source text and
the identifiers it refers to, which is what the structural rules need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser, Tree

_PARSER = Parser(Language(tree_sitter_bicep.language()))

# Bicep's escapes inside single-quoted strings.
_ESCAPES = {"\\\\": "\\", "\\'": "'", "\\n": "\n", "\\r": "\r", "\\t": "\t", "\\$": "$"}


@dataclass(frozen=True)
class Expr:
    """A value computed at deployment time, kept as source text."""

    text: str
    kind: str
    identifiers: frozenset[str]
    # For a ternary: (consequence, alternative) and the condition's source text; for an
    # interpolated string: its literal pieces.
    branches: tuple[Value, ...] = ()
    literal_parts: tuple[str, ...] = ()
    condition: str = ""


Value: TypeAlias = "bool | int | str | list[Value] | dict[str, Value] | Expr | None"


class Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING = Missing()


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str  # full type without API version, e.g. Microsoft.Storage/storageAccounts/queueServices
    api_version: str  # empty for a nested resource, which inherits its parent's
    body: dict[str, Value]
    existing: bool
    condition: Expr | None
    loop_source: Expr | None
    path: Path
    line: int

    def get(self, dotted: str) -> Value | Missing:
        return lookup(self.body, dotted)

    def where(self) -> str:
        return f"{self.path.name}:{self.line} ({self.symbol})"


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    secure: bool
    default: Value | Missing


@dataclass(frozen=True)
class Module:
    symbol: str
    source: str
    body: dict[str, Value]
    line: int
    condition: Expr | None = None

    @property
    def params(self) -> dict[str, Value]:
        params = self.body.get("params", {})
        return params if isinstance(params, dict) else {}


@dataclass(frozen=True)
class Template:
    path: Path
    tree: Tree
    target_scope: str
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Value] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    modules: list[Module] = field(default_factory=list)
    outputs: dict[str, Value] = field(default_factory=dict)

    def of_type(self, resource_type: str, *, include_existing: bool = False) -> list[Resource]:
        return [
            r
            for r in self.resources
            if r.type.lower() == resource_type.lower() and (include_existing or not r.existing)
        ]

    def resource(self, symbol: str) -> Resource | None:
        return next((r for r in self.resources if r.symbol == symbol), None)

    def module(self, source: str) -> Module | None:
        return next((m for m in self.modules if m.source == source), None)


def lookup(value: Value | Missing, dotted: str) -> Value | Missing:
    """Follows `a.b.c` through nested objects; MISSING when a step is absent."""
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def parse(source: bytes) -> Tree:
    return _PARSER.parse(source)


def syntax_problems(tree: Tree) -> list[str]:
    """Every ERROR or MISSING node, as `line:column kind text`."""
    problems: list[str] = []
    for node in _walk(tree.root_node):
        if node.is_error or node.is_missing:
            row, column = node.start_point
            kind = "missing" if node.is_missing else "error"
            problems.append(f"{row + 1}:{column + 1} {kind} {_text(node)[:60]!r}")
    return problems


def load(path: Path) -> Template:
    tree = parse(path.read_bytes())
    scope = "resourceGroup"
    params: dict[str, Param] = {}
    variables: dict[str, Value] = {}
    resources: list[Resource] = []
    modules: list[Module] = []
    outputs: dict[str, Value] = {}
    decorators: list[str] = []
    for node in tree.root_node.named_children:
        if node.type == "decorators":
            # Decorators are a sibling just before the declaration they apply to.
            decorators = [_decorator_name(d) for d in node.named_children]
            continue
        if node.type == "target_scope_assignment":
            value = _value(node.named_children[-1])
            scope = value if isinstance(value, str) else scope
        elif node.type == "parameter_declaration":
            param = _param(node, decorators)
            params[param.name] = param
        elif node.type == "variable_declaration":
            variables[_text(node.named_children[0])] = _value(node.named_children[-1])
        elif node.type == "resource_declaration":
            resources.extend(_resources(node, path, parent_type=None))
        elif node.type == "module_declaration":
            modules.append(_module(node))
        elif node.type == "output_declaration":
            outputs[_text(node.named_children[0])] = _value(node.named_children[-1])
        if node.type != "comment":
            decorators = []
    return Template(
        path=path,
        tree=tree,
        target_scope=scope,
        params=params,
        variables=variables,
        resources=resources,
        modules=modules,
        outputs=outputs,
    )


def load_all(infra_dir: Path) -> dict[str, Template]:
    """Every template under `infra_dir`, keyed by its path relative to it (POSIX form)."""
    return {
        path.relative_to(infra_dir).as_posix(): load(path)
        for path in sorted(infra_dir.rglob("*.bicep"))
    }


def calls(tree: Tree) -> Iterator[tuple[str, int]]:
    """Names of all called functions (`f(...)` and `x.f(...)`) with their line numbers."""
    for node in _walk(tree.root_node):
        if node.type != "call_expression":
            continue
        function = node.child_by_field_name("function") or node.named_children[0]
        name_node = (
            function.named_children[-1] if function.type == "member_expression" else function
        )
        yield _text(name_node), node.start_point[0] + 1


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _decorator_name(decorator: Node) -> str:
    call = decorator.named_children[0]
    function = call.child_by_field_name("function") or call.named_children[0]
    return _text(function) if call.type == "call_expression" else _text(call)


def _param(node: Node, decorators: list[str]) -> Param:
    children = node.named_children
    name = _text(children[0])
    type_text = _text(children[1]) if len(children) > 1 else ""
    has_default = any(c.type == "=" for c in node.children)
    default: Value | Missing = _value(children[-1]) if has_default else MISSING
    return Param(name=name, type=type_text, secure="secure" in decorators, default=default)


def _module(node: Node) -> Module:
    children = node.named_children
    source = _value(children[1])
    body_node = _body_object(node)
    body = _object(body_node) if body_node is not None else {}
    condition = next(
        (_expr(c.named_children[0]) for c in node.named_children if c.type == "if_statement"),
        None,
    )
    return Module(
        symbol=_text(children[0]),
        source=source if isinstance(source, str) else _text(children[1]),
        body=body,
        line=node.start_point[0] + 1,
        condition=condition,
    )


def _resources(node: Node, path: Path, parent_type: str | None) -> list[Resource]:
    """The resource declared by `node` and every resource nested in its body."""
    children = node.named_children
    symbol = _text(children[0])
    type_value = _value(children[1])
    declared = type_value if isinstance(type_value, str) else _text(children[1])
    type_name, _, api_version = declared.partition("@")
    if parent_type is not None and "/" not in type_name:
        type_name = f"{parent_type}/{type_name}"
    existing = any(c.type == "existing" for c in node.children)

    condition: Expr | None = None
    loop_source: Expr | None = None
    for child in node.named_children[2:]:
        if child.type == "if_statement":
            condition = _expr(child.named_children[0])
        elif child.type == "for_statement":
            loop_source = _loop_source(child)
            inner_if = next((c for c in child.named_children if c.type == "if_statement"), None)
            if inner_if is not None:
                condition = _expr(inner_if.named_children[0])

    body_node = _body_object(node)
    body: dict[str, Value] = {}
    nested: list[Resource] = []
    if body_node is not None:
        for prop in body_node.named_children:
            if prop.type != "object_property":
                continue
            first = prop.named_children[0]
            if first.type == "resource_declaration":
                nested.extend(_resources(first, path, parent_type=type_name))
            else:
                key, value = _property(prop)
                body[key] = value
    resource = Resource(
        symbol=symbol,
        type=type_name,
        api_version=api_version,
        body=body,
        existing=existing,
        condition=condition,
        loop_source=loop_source,
        path=path,
        line=node.start_point[0] + 1,
    )
    return [resource, *nested]


def _loop_source(for_node: Node) -> Expr:
    # `[for x in <source>: body]`: the source follows the `in` keyword.
    children = list(for_node.children)
    index = next(i for i, c in enumerate(children) if c.type == "in")
    return _expr(next(c for c in children[index + 1 :] if c.is_named))


def _body_object(node: Node) -> Node | None:
    """The object literal of a resource/module, looking through `if (...)` and `[for ...]`."""
    for child in node.named_children:
        if child.type == "object":
            return child
        if child.type in ("if_statement", "for_statement"):
            found = _body_object(child)
            if found is not None:
                return found
    return None


def _property(prop: Node) -> tuple[str, Value]:
    key_node = prop.named_children[0]
    key_value = _value(key_node) if key_node.type == "string" else _text(key_node)
    key = key_value if isinstance(key_value, str) else _text(key_node)
    value_node = next(
        (c for c in prop.named_children[1:] if c.type != "comment"),
        None,
    )
    return key, (_value(value_node) if value_node is not None else None)


def _object(node: Node) -> dict[str, Value]:
    result: dict[str, Value] = {}
    for prop in node.named_children:
        if prop.type == "object_property":
            key, value = _property(prop)
            result[key] = value
    return result


def _value(node: Node) -> Value:
    kind = node.type
    if kind == "object":
        return _object(node)
    if kind == "array":
        return [_value(c) for c in node.named_children if c.type != "comment"]
    if kind == "boolean":
        return _text(node) == "true"
    if kind == "null":
        return None
    if kind == "number":
        return int(_text(node))
    if kind == "string":
        literal = _string_literal(node)
        if literal is not None:
            return literal
    return _expr(node)


def _string_literal(node: Node) -> str | None:
    """The string's value, or None when it interpolates something."""
    pieces: list[str] = []
    for child in node.named_children:
        if child.type == "string_content":
            pieces.append(_text(child))
        elif child.type == "escape_sequence":
            pieces.append(_ESCAPES.get(_text(child), _text(child)))
        else:
            return None
    return "".join(pieces)


def _expr(node: Node) -> Expr:
    identifiers = frozenset(_text(n) for n in _walk(node) if n.type == "identifier")
    branches: tuple[Value, ...] = ()
    literal_parts: tuple[str, ...] = ()
    condition = ""
    if node.type == "ternary_expression":
        consequence = node.child_by_field_name("consequence")
        alternative = node.child_by_field_name("alternative")
        if consequence is not None and alternative is not None:
            branches = (_value(consequence), _value(alternative))
        test = node.child_by_field_name("condition")
        condition = _text(test) if test is not None else ""
    elif node.type == "string":
        literal_parts = tuple(
            _text(c) for c in node.named_children if c.type in ("string_content", "escape_sequence")
        )
    elif node.type == "parenthesized_expression" and node.named_children:
        return _expr(node.named_children[0])
    return Expr(
        text=_text(node),
        kind=node.type,
        identifiers=identifiers,
        branches=branches,
        literal_parts=literal_parts,
        condition=condition,
    )

"""The deployment's two network shapes, read from the templates: `vnetEnabled` false (the default)
and true. What `vnetEnabled` decides (a `vnetEnabled ? a : b` value, a module deployed
`if (vnetEnabled)`) is resolved for the shape; every other value is left as it is.

Each template names the switch `vnetEnabled` (main.bicep passes it down under that name), so a
value is resolved by the name alone.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from tests.infra.bicep import Expr, Missing, Module, Resource, Template, Value

SWITCH = "vnetEnabled"
MAIN = "main.bicep"


def resolve(value: Value | Missing, vnet_enabled: bool) -> Value | Missing:
    """`value` as deployed in the shape: `vnetEnabled ? a : b` becomes a or b, in nested objects
    and arrays too."""
    if isinstance(value, Expr) and value.kind == "ternary_expression":
        switch = _switch(value.condition)
        if switch is not None:
            chosen = value.branches[0] if switch == vnet_enabled else value.branches[1]
            return resolve(chosen, vnet_enabled)
    if isinstance(value, dict):
        return {k: resolve(v, vnet_enabled) for k, v in value.items()}  # type: ignore[misc]
    if isinstance(value, list):
        return [resolve(v, vnet_enabled) for v in value]  # type: ignore[misc]
    return value


def _switch(condition: str) -> bool | None:
    """True for `vnetEnabled`, False for `!vnetEnabled`, None for any other condition."""
    text = condition.strip().strip("()").replace(" ", "")
    if text == SWITCH:
        return True
    if text == f"!{SWITCH}":
        return False
    return None


@dataclass(frozen=True)
class Shape:
    templates: dict[str, Template]
    vnet_enabled: bool

    def deployed_templates(self) -> list[str]:
        """main.bicep and every module it deploys in this shape, followed down."""
        found: list[str] = []
        pending = [MAIN]
        while pending:
            path = pending.pop()
            if path in found or path not in self.templates:
                continue
            found.append(path)
            for module in self.templates[path].modules:
                if self.deploys(module):
                    pending.append(
                        posixpath.normpath(posixpath.join(posixpath.dirname(path), module.source))
                    )
        return found

    def deploys(self, module: Module) -> bool:
        if module.condition is None:
            return True
        switch = _switch(module.condition.text)
        return True if switch is None else switch == self.vnet_enabled

    def resources(self, resource_type: str) -> list[Resource]:
        return [
            r
            for path in self.deployed_templates()
            for r in self.templates[path].of_type(resource_type)
        ]

    def modules(self, source_suffix: str) -> list[tuple[str, Module]]:
        """The module calls, in deployed templates, of a template whose path ends so."""
        return [
            (path, m)
            for path in self.deployed_templates()
            for m in self.templates[path].modules
            if m.source.endswith(source_suffix) and self.deploys(m)
        ]

    def value(self, resource: Resource, dotted: str) -> Value | Missing:
        return resolve(resource.get(dotted), self.vnet_enabled)

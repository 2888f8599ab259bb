"""Cut the Graph v1.0 CSDL down to the types the local Graph emulator validates.

Run by hand from the repository root whenever the upstream metadata is refreshed:

    .venv/bin/python local/graph_emulator/metadata/extract.py PATH/TO/cleanMetadata.xml

PATH/TO/cleanMetadata.xml is Microsoft's full v1.0 metadata (repository
microsoftgraph/msgraph-metadata, file clean_v10_metadata/cleanMetadata.xml). The subset is written
to graph-v1.0-subset.xml next to this script (or to --output). See README.md in this folder for
provenance and licence.

The subset is the closure of the root types below: every EntityType, ComplexType and EnumType they
reference through properties and BaseType chains, plus the complex types derived from included
complex types (so an `@odata.type` naming a derived type can be checked). Navigation properties are
kept only where their target is already in the subset, so the closure does not pull in the whole
directory and mail model.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

EDMX_NS = "http://docs.oasis-open.org/odata/ns/edmx"
EDM_NS = "http://docs.oasis-open.org/odata/ns/edm"
GRAPH_NS = "microsoft.graph"

# Types validated with everything they reference.
ROOT_TYPES = (
    "microsoft.graph.event",
    "microsoft.graph.subscription",
    "microsoft.graph.mailboxSettings",
    "microsoft.graph.singleValueLegacyExtendedProperty",
    "microsoft.graph.multiValueLegacyExtendedProperty",
)
# Types kept with their structural properties only: user's navigation properties reach most of
# the directory model, which the emulator never accepts in a body.
STRUCTURAL_ONLY_TYPES = ("microsoft.graph.user",)
# Bound actions kept, as (action name, binding type).
ROOT_ACTIONS = (("cancel", "microsoft.graph.event"),)

TYPE_TAGS = ("EntityType", "ComplexType", "EnumType")
DEFAULT_OUTPUT = Path(__file__).with_name("graph-v1.0-subset.xml")


@dataclass(frozen=True)
class Definition:
    namespace: str
    element: ET.Element


def _edm(tag: str) -> str:
    return f"{{{EDM_NS}}}{tag}"


def _strip_collection(type_ref: str) -> str:
    if type_ref.startswith("Collection(") and type_ref.endswith(")"):
        return type_ref[len("Collection(") : -1]
    return type_ref


class Model:
    """Index of every schema-level type and action of the full metadata by qualified name."""

    def __init__(self, root: ET.Element) -> None:
        self.types: dict[str, Definition] = {}
        self.actions: list[Definition] = []
        self.schema_attributes: dict[str, dict[str, str]] = {}
        self._aliases: dict[str, str] = {}
        for schema in root.iter(_edm("Schema")):
            namespace = schema.attrib["Namespace"]
            self.schema_attributes[namespace] = dict(schema.attrib)
            if "Alias" in schema.attrib:
                self._aliases[schema.attrib["Alias"]] = namespace
            for child in schema:
                tag = child.tag.removeprefix(f"{{{EDM_NS}}}")
                if tag in TYPE_TAGS:
                    self.types[f"{namespace}.{child.attrib['Name']}"] = Definition(namespace, child)
                elif tag == "Action":
                    self.actions.append(Definition(namespace, child))

    def qualify(self, type_ref: str) -> str:
        """Qualified name for a (possibly alias-qualified, non-collection) type reference."""
        prefix, _, name = type_ref.rpartition(".")
        return f"{self._aliases.get(prefix, prefix)}.{name}"

    def referenced_types(self, element: ET.Element, *, with_navigation: bool) -> Iterator[str]:
        if "BaseType" in element.attrib:
            yield self.qualify(element.attrib["BaseType"])
        tags = [_edm("Property"), _edm("Parameter")]
        if with_navigation:
            tags.append(_edm("NavigationProperty"))
        for child in element:
            if child.tag in tags:
                name = self.qualify(_strip_collection(child.attrib["Type"]))
                if not name.startswith("Edm."):
                    yield name

    def find_action(self, name: str, binding_type: str) -> Definition:
        for action in self.actions:
            parameters = action.element.findall(_edm("Parameter"))
            if (
                action.element.attrib["Name"] == name
                and action.element.attrib.get("IsBound") == "true"
                and parameters
                and self.qualify(parameters[0].attrib["Type"]) == binding_type
            ):
                return action
        raise LookupError(f"no action {name!r} bound to {binding_type!r}")


def closure(model: Model) -> set[str]:
    """Qualified names of every type the subset keeps."""
    selected: set[str] = set()
    pending = [*ROOT_TYPES, *STRUCTURAL_ONLY_TYPES]
    for name, binding in ROOT_ACTIONS:
        pending.extend(
            model.referenced_types(model.find_action(name, binding).element, with_navigation=False)
        )
    while True:
        while pending:
            name = pending.pop()
            if name in selected:
                continue
            if name not in model.types:
                raise LookupError(f"type {name!r} is not defined in the metadata")
            selected.add(name)
            element = model.types[name].element
            # Navigation targets of the roots are followed only if they are roots themselves
            # (the extended properties), which the fixed point below takes care of.
            pending.extend(model.referenced_types(element, with_navigation=False))
        derived = [
            name
            for name, definition in model.types.items()
            if name not in selected
            and definition.element.tag == _edm("ComplexType")
            and "BaseType" in definition.element.attrib
            and model.qualify(definition.element.attrib["BaseType"]) in selected
        ]
        if not derived:
            return selected
        pending.extend(derived)


def _trimmed(model: Model, name: str, selected: set[str]) -> ET.Element:
    """Copy of a type definition without annotations and without unreachable navigation."""
    source = model.types[name].element
    copy = ET.Element(source.tag, dict(source.attrib))
    for child in source:
        if child.tag == _edm("Annotation"):
            continue
        if child.tag == _edm("NavigationProperty"):
            target = model.qualify(_strip_collection(child.attrib["Type"]))
            if name in STRUCTURAL_ONLY_TYPES or target not in selected:
                continue
        kept = ET.SubElement(copy, child.tag, dict(child.attrib))
        for grandchild in child:  # Key/PropertyRef and enum Members; never annotations
            if grandchild.tag != _edm("Annotation"):
                ET.SubElement(kept, grandchild.tag, dict(grandchild.attrib))
    return copy


def subset_document(full: ET.Element) -> ET.ElementTree:
    model = Model(full)
    selected = closure(model)
    edmx = ET.Element(f"{{{EDMX_NS}}}Edmx", {"Version": "4.0"})
    services = ET.SubElement(edmx, f"{{{EDMX_NS}}}DataServices")
    schemas: dict[str, ET.Element] = {}

    def schema_for(namespace: str) -> ET.Element:
        if namespace not in schemas:
            schemas[namespace] = ET.SubElement(
                services, _edm("Schema"), model.schema_attributes[namespace]
            )
        return schemas[namespace]

    # Graph's own namespace first, then any other, each in a stable (sorted) order for clean diffs.
    for name in sorted(selected, key=lambda n: (model.types[n].namespace != GRAPH_NS, n)):
        schema_for(model.types[name].namespace).append(_trimmed(model, name, selected))
    for action_name, binding in ROOT_ACTIONS:
        action = model.find_action(action_name, binding)
        copy = ET.Element(action.element.tag, dict(action.element.attrib))
        for parameter in action.element.findall(_edm("Parameter")):
            ET.SubElement(copy, parameter.tag, dict(parameter.attrib))
        schema_for(action.namespace).append(copy)
    ET.register_namespace("edmx", EDMX_NS)
    ET.register_namespace("", EDM_NS)
    tree = ET.ElementTree(edmx)
    ET.indent(tree, space="  ")
    return tree


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("csdl", type=Path, help="full Graph v1.0 metadata (cleanMetadata.xml)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    full = ET.parse(args.csdl).getroot()  # noqa: S314 - Microsoft's published metadata, run by hand
    tree = subset_document(full)
    tree.write(args.output, encoding="utf-8", xml_declaration=True)
    kept = sum(
        1 for element in tree.iter() if element.tag.removeprefix(f"{{{EDM_NS}}}") in TYPE_TAGS
    )
    print(f"wrote {kept} types to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

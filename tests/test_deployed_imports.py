"""The deployed package (`sync/`, `function_app.py`) imports only what `requirements.txt`
installs (its pins and what they depend on): Azure builds the app from that file alone."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _deployed_imports() -> set[str]:
    names: set[str] = set()
    for path in [ROOT / "function_app.py", *sorted((ROOT / "sync").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"sync", "__future__"}


def _name(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def _installed_by_requirements() -> set[str]:
    """The pinned distributions and, transitively, what they require (extras left out)."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    todo = [Requirement(line).name for line in lines if line.strip() and not line.startswith("#")]
    seen: set[str] = set()
    while todo:
        name = _name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        for need in map(Requirement, needs):
            if need.marker is None or need.marker.evaluate({"extra": ""}):
                todo.append(need.name)
    return seen


def test_every_third_party_import_of_the_app_is_in_requirements_txt() -> None:
    distributions = packages_distributions()
    installed = _installed_by_requirements()
    missing = {
        module: distributions.get(module, ["?"])
        for module in _deployed_imports()
        if not {_name(d) for d in distributions.get(module, [])} & installed
    }
    assert missing == {}, "imported by the app but not in requirements.txt"

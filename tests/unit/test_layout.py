"""The code's layout rules (docs/architecture.md): no import cycles between modules, the
kit imports no service, and no module but `__main__` imports a service's `app`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {
    "alumni_kit": ROOT / "services/kit/src/alumni_kit",
    "membership": ROOT / "services/membership/src/membership",
    "consent": ROOT / "services/consent/src/consent",
    "mailer": ROOT / "services/mailer/src/mailer",
    "events": ROOT / "services/events/src/events",
    "analytics": ROOT / "services/analytics/src/analytics",
    "usn_schemas": ROOT / "schemas/src/usn_schemas",
}
SERVICES = ("membership", "consent", "mailer", "events", "analytics")


def _module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join((package, *parts)).removesuffix(".__init__")


def _imports(package: str, path: Path) -> set[str]:
    """The modules `path` imports (a `from a.b import c` names a.b.c where c is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in ALL else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


ALL = {_module_name(p, f) for p, root in PACKAGES.items() for f in root.rglob("*.py")}
GRAPH = {_module_name(p, f): _imports(p, f) & ALL for p, root in PACKAGES.items() for f in root.rglob("*.py")}


def _cycle_from(start: str) -> list[str] | None:
    stack, on_path = [(start, iter(sorted(GRAPH[start])))], [start]
    while stack:
        _, deps = stack[-1]
        nxt = next(deps, None)
        if nxt is None:
            stack.pop()
            on_path.pop()
        elif nxt == start:
            return [*on_path, start]
        elif nxt not in on_path and len(on_path) < 50:
            stack.append((nxt, iter(sorted(GRAPH[nxt]))))
            on_path.append(nxt)
    return None


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_one_that_imports_it_back(module: str) -> None:
    assert _cycle_from(module) is None


def test_the_kit_and_the_contracts_import_no_service() -> None:
    shared = {m: deps for m, deps in GRAPH.items() if m.startswith(("alumni_kit", "usn_schemas"))}
    assert {m: d for m, d in shared.items() if any(x.startswith(SERVICES) for x in d)} == {}


def test_only_main_imports_a_services_app() -> None:
    importers = {m for m, deps in GRAPH.items() for d in deps if d.endswith(".app") and d.split(".")[0] in SERVICES}
    assert importers <= {f"{s}.__main__" for s in SERVICES}

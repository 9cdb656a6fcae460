"""The house's rules, checked on the source so that a new module follows them without being listed anywhere:
the core does not depend on Flask (pygeoapi's rule), imports point one way (no cycles), and the bottom layer
(values, settings, errors, taxonomy) depends on nothing above it."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mapservice"
# Not the core: the Flask layer, the command line (a Flask CLI group) and Alembic's migration scripts.
OUTSIDE_CORE = ("web", "cli", "migrations")
BOTTOM = {"mapservice.values", "mapservice.settings", "mapservice.errors", "mapservice.taxonomy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def core_modules() -> list[str]:
    return [name for name in all_modules()
            if name != "mapservice" and name.split(".")[1] not in OUTSIDE_CORE]


def imports_of(name: str, path: Path) -> set[str]:
    """The mapservice modules `name` imports (absolute or relative, at any depth of the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    modules = all_modules()
    return {m for m in found if m in modules and m != name}


def test_core_modules_are_found_by_looking_at_the_package():
    core = core_modules()
    assert {"mapservice.search", "mapservice.values", "mapservice.tiles", "mapservice.db"} <= set(core)
    assert not any(m.startswith(("mapservice.web", "mapservice.cli")) for m in core)


def test_core_modules_import_without_flask():
    code = f"import sys\nfor m in {core_modules()!r}: __import__(m)\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'flask'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", core_modules())
def test_the_core_never_imports_the_web_layer_or_the_command_line(name):
    imported = imports_of(name, all_modules()[name])
    assert not {m for m in imported if m.startswith(("mapservice.web", "mapservice.cli"))}


def test_the_bottom_layer_depends_on_nothing_above_it():
    modules = all_modules()
    for name in BOTTOM:
        assert imports_of(name, modules[name]) <= BOTTOM, name


def test_imports_point_one_way():
    modules = all_modules()
    graph = {name: imports_of(name, path) - {"mapservice"} for name, path in modules.items()}
    # Depth-first search for a cycle; report it whole.
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return trail + [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, trail + [node])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name, [])
            assert cycle is None, " -> ".join(cycle)

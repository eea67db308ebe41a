"""How jobs/ hangs together: no import cycles, and the layers the packages'
docstrings promise (the models load no HTTP client, the provider adapters no
Django). Imports are read from the source with ast, so a rule breaks here
before anything imports the offending module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JOBS = ROOT / "jobs"

# jobs.providers modules that speak HTTP or hold plain data: no Django in them.
PROVIDER_PURE = {
    f"jobs.providers.{name}"
    for name in ("catalogue", "http", "base", "joypix", "lipsync_studio", "adapters")
}
# The sandbox's server side: a stand-in provider that knows nothing of the studio.
# (Its benchmark is a client, and may use the adapters.)
SANDBOX_SERVER = {"jobs.providers.sandbox"} | {
    f"jobs.providers.sandbox.{name}"
    for name in ("clock", "config", "contracts", "render", "server", "transport")
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(JOBS.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ModuleLevelImports(ast.NodeVisitor):
    """The import statements that run when the module is imported: not those
    inside functions, nor under `if TYPE_CHECKING:`."""

    def __init__(self) -> None:
        self.found: list[ast.Import | ast.ImportFrom] = []

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.found.append(node)

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node: ast.AST) -> None:
        pass

    visit_AsyncFunctionDef = visit_Lambda = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        for child in (
            node.orelse if _is_type_checking(node) else [node.test, *node.body, *node.orelse]
        ):
            self.visit(child)


@cache
def imports(name: str, *, module_level: bool) -> frozenset[str]:
    """Every module `name` imports (absolute names; `from pkg import mod` counts as
    pkg.mod when that is a module of jobs). Module level only, or everywhere."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if module_level:
        visitor = _ModuleLevelImports()
        visitor.visit(tree)
        nodes: list[ast.AST] = list(visitor.found)
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules() else target)
    return frozenset(found)


def jobs_graph() -> dict[str, set[str]]:
    names = modules()
    return {
        name: {imported for imported in imports(name, module_level=True) if imported in names}
        for name in names
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (or a module
    importing itself), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    """Positive control: a made-up graph with one cycle and one chain."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(cycles(graph)) == [["a", "b", "c"], ["e"]]


def test_the_import_reader_sees_this_tree():
    """Positive control: known edges are read, relative and absolute, and an
    import under `if TYPE_CHECKING:` or inside a function is not module level."""
    graph = jobs_graph()
    assert "jobs.providers.catalogue" in graph["jobs.models.provider_account"]
    assert "jobs.providers.base" in graph["jobs.providers.joypix"]
    assert "jobs.models" in graph["jobs.providers.routing"]
    assert "jobs.providers.sandbox.server" not in graph["jobs.providers.sandbox.contracts"]
    assert "jobs.providers.routing" not in graph["jobs.management.commands.runstudio"]
    assert "jobs.providers.routing" in imports(
        "jobs.management.commands.runstudio", module_level=False
    )


def test_no_import_cycles_in_jobs():
    assert cycles(jobs_graph()) == []


def test_the_models_import_nothing_from_providers_but_the_catalogue():
    wrong = {
        (name, imported)
        for name in modules()
        if name == "jobs.models" or name.startswith("jobs.models.")
        for imported in imports(name, module_level=False)
        if imported.startswith("jobs.providers") and imported != "jobs.providers.catalogue"
    }
    assert wrong == set()


def _outside(name: str, allowed_jobs: set[str]) -> set[str]:
    return {
        imported
        for imported in imports(name, module_level=False)
        if imported.split(".")[0] == "django"
        or (imported.split(".")[0] == "jobs" and imported not in allowed_jobs)
    }


@pytest.mark.parametrize("name", sorted(PROVIDER_PURE))
def test_the_adapters_and_their_http_client_import_no_django(name):
    assert _outside(name, PROVIDER_PURE) == set()


def test_the_catalogue_imports_only_the_standard_library():
    stdlib = sys.stdlib_module_names | {"__future__"}
    assert {
        imported
        for imported in imports("jobs.providers.catalogue", module_level=False)
        if imported.split(".")[0] not in stdlib
    } == set()


@pytest.mark.parametrize("name", sorted(SANDBOX_SERVER))
def test_the_sandbox_server_imports_nothing_of_the_studio(name):
    assert _outside(name, SANDBOX_SERVER) == set()


def _loaded_after_django_setup(module: str) -> set[str]:
    """Which of requests, urllib3 a fresh interpreter has loaded once Django is
    set up (all models imported) and `module` imported. The admin's
    autodiscovery is left out: it loads the whole site, pipeline included."""
    code = (
        "import sys\n"
        "from django.conf import settings\n"
        "settings.INSTALLED_APPS = ['django.contrib.admin.apps.SimpleAdminConfig'"
        " if app == 'django.contrib.admin' else app for app in settings.INSTALLED_APPS]\n"
        "import django\n"
        "django.setup()\n"
        f"import {module}\n"
        "print(' '.join(m for m in ('requests', 'urllib3') if m in sys.modules))\n"
    )
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "lipsync_site.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_importing_the_models_loads_no_http_client():
    assert _loaded_after_django_setup("jobs.models") == set()
    # Positive control: the same interpreter does see it when it is loaded.
    assert _loaded_after_django_setup("jobs.providers.adapters") == {"requests", "urllib3"}

"""The import structure of the sans-IO core and of the local server, read from the source with
`ast` (nothing is imported).

Nodes are the modules under `src/meshagent_core` and `src/meshagent_trio/server` (a package is
its `__init__`). An edge is an import statement naming another of those modules: relative
imports are resolved, `from pkg import name` points at `pkg.name` when that is a module and at
`pkg` otherwise, and imports inside functions count as much as top-level ones. Imports under
`if TYPE_CHECKING:` are not edges (they never run). The implicit import of a module's parent
packages is not an edge either: Python starts a package before any of its submodules, so that
edge is never a cycle at import time (and counting it would make every package a cycle with its
own submodules).

Checked: no cycles; the server's floors (a server module imports server modules of its own
floor or below only); the core imports nothing from the adapters.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


SRC = Path(__file__).resolve().parents[1] / "src"
CORE = "meshagent_core"
SERVER = "meshagent_trio.server"
ADAPTERS = ("meshagent_trio", "meshagent_anyio")

#: The server's floors, from the bottom. `name.*` is every module under `name` (its package
#: `__init__` included); other names are single modules (`rooms` is the package `__init__`).
FLOORS: list[list[str]] = [
    ["config"],
    ["auth", "sqlite_store", "hooks", "rooms.participant", "rooms.room", "rooms", "toolkit", "signed_downloads"],
    ["control.*"],
    ["toolkits.*", "hosting", "services.*"],
    ["dispatch"],
    ["rooms.connection"],
    ["http.*"],
    ["rest.*", "scheduler"],
    ["app"],
    ["process", "__init__"],
]


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (dotted, absolute; may lie outside the graph)
    line: int
    in_function: bool
    type_checking: bool


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _modules() -> dict[str, tuple[Path, bool]]:
    modules: dict[str, tuple[Path, bool]] = {}
    for root in (SRC / "meshagent_core", SRC / "meshagent_trio" / "server"):
        for path in sorted(root.rglob("*.py")):
            name, is_package = _module_name(path)
            modules[name] = (path, is_package)
    return modules


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement with (in a function, under `if TYPE_CHECKING:`)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool, bool]] = []

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append((node, in_function, type_checking))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, in_function, True)
            for child in node.orelse:  # the `else:` of TYPE_CHECKING runs
                visit(child, in_function, type_checking)
            return
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_checking)

    visit(tree, False, False)
    return found


def _resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        package = (module if is_package else module.rpartition(".")[0]).split(".")
        if node.level - 1 > len(package) - 1:
            raise AssertionError(f"{module}: relative import beyond the top-level package (line {node.lineno})")
        base_parts = package[: len(package) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        assert node.module is not None
        base = node.module
    targets = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        targets.append(submodule if submodule in MODULES else base)
    return targets


def _all_imports() -> list[Import]:
    imports: list[Import] = []
    for module, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, in_function, type_checking in _import_nodes(tree):
            for target in _resolve(module, is_package, node):
                imports.append(Import(module, target, node.lineno, in_function, type_checking))
    return imports


IMPORTS = _all_imports()


def _graph(*, count_function_imports: bool = True) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {module: {} for module in MODULES}
    for item in IMPORTS:
        if item.type_checking or item.target not in MODULES or item.target == item.source:
            continue
        if item.in_function and not count_function_imports:
            continue
        graph[item.source].setdefault(item.target, item)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan, without recursion: the components of more than one module (or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work.append((start, sorted(graph[start])))
        while work:
            node, successors = work[-1]
            if successors:
                successor = successors.pop(0)
                if successor not in index:
                    index[successor] = low[successor] = counter
                    counter += 1
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, sorted(graph[successor])))
                elif successor in on_stack:
                    low[node] = min(low[node], index[successor])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _a_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """One concrete cycle inside `component`, as the import statements that make it."""
    members = set(component)
    start = component[0]
    # breadth-first from start back to start, within the component
    previous: dict[str, Import] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        following = []
        for node in frontier:
            for target, item in sorted(graph[node].items()):
                if target not in members:
                    continue
                if target == start:
                    path = [item]
                    while path[0].source != start:
                        path.insert(0, previous[path[0].source])
                    return path
                if target not in seen:
                    seen.add(target)
                    previous[target] = item
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")


def _describe(cycle: list[Import]) -> str:
    steps = [
        f"{item.source} -> {item.target} (line {item.line}{', inside a function' if item.in_function else ''})"
        for item in cycle
    ]
    return "\n    ".join(steps)


def _cycles_report(graph: dict[str, dict[str, Import]], components: list[list[str]]) -> str:
    """Per component: one concrete cycle, then every import between its members."""
    parts = []
    for component in components:
        members = set(component)
        inside = [item for module in component for target, item in sorted(graph[module].items()) if target in members]
        parts.append(
            f"cycle among {', '.join(component)}:\n    {_describe(_a_cycle(graph, component))}\n"
            f"  all imports between them:\n    {_describe(inside)}"
        )
    return "\n".join(parts)


# --- the graph itself ------------------------------------------------------------------------


def test_the_graph_covers_both_packages() -> None:
    assert f"{CORE}.envelope" in MODULES and f"{CORE}.jsondepth" in MODULES
    assert f"{SERVER}.app" in MODULES and f"{SERVER}.rooms.connection" in MODULES
    assert len(MODULES) > 40
    # the resolver sees relative imports: dispatch imports hosting via `from . import hosting`
    assert f"{SERVER}.hosting" in _graph()[f"{SERVER}.dispatch"]
    # ... and ignores TYPE_CHECKING imports (toolkit only names Participant for the checker)
    assert any(
        item.source == f"{SERVER}.toolkit" and item.target == f"{SERVER}.rooms.participant" and item.type_checking
        for item in IMPORTS
    )
    assert f"{SERVER}.rooms.participant" not in _graph()[f"{SERVER}.toolkit"]


def test_the_cycle_finder_finds_and_names_a_cycle() -> None:
    a = Import("a", "b", 1, False, False)
    b = Import("b", "c", 2, True, False)
    c = Import("c", "a", 3, False, False)
    graph = {"a": {"b": a}, "b": {"c": b}, "c": {"a": c}, "d": {"a": Import("d", "a", 4, False, False)}}
    components = _strongly_connected(graph)
    assert components == [["a", "b", "c"]]
    assert "b -> c (line 2, inside a function)" in _cycles_report(graph, components)


# --- cycles ----------------------------------------------------------------------------------


def test_no_import_cycles_among_top_level_imports() -> None:
    graph = _graph(count_function_imports=False)
    components = _strongly_connected(graph)
    assert not components, "import cycles:\n" + _cycles_report(graph, components)


def test_the_server_has_no_import_cycles_counting_imports_inside_functions() -> None:
    graph = {
        module: {target: item for target, item in edges.items() if target.startswith(SERVER)}
        for module, edges in _graph().items()
        if module == SERVER or module.startswith(SERVER + ".")
    }
    components = _strongly_connected(graph)
    assert not components, "import cycles:\n" + _cycles_report(graph, components)


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    """A deferred import inside a function hides a cycle at run time; the modules are still not
    layered, so it counts."""
    graph = _graph()
    components = _strongly_connected(graph)
    assert not components, "import cycles:\n" + _cycles_report(graph, components)


# --- the server's floors ---------------------------------------------------------------------


def _server_modules() -> list[str]:
    return [module for module in MODULES if module == SERVER or module.startswith(SERVER + ".")]


def _relative(module: str) -> str:
    return "__init__" if module == SERVER else module[len(SERVER) + 1 :]


def _floor_of(module: str) -> int:
    name = _relative(module)
    matches = []
    for floor, patterns in enumerate(FLOORS):
        for pattern in patterns:
            if pattern.endswith(".*"):
                prefix = pattern[:-2]
                if name == prefix or name.startswith(prefix + "."):
                    matches.append(floor)
            elif name == pattern:
                matches.append(floor)
    assert len(matches) == 1, f"{module} is on floors {matches} (it must be on exactly one)"
    return matches[0]


def test_every_server_module_is_on_exactly_one_floor() -> None:
    for module in _server_modules():
        _floor_of(module)
    # and every floor names something that exists
    names = {_relative(module) for module in _server_modules()}
    for patterns in FLOORS:
        for pattern in patterns:
            if pattern.endswith(".*"):
                assert any(n == pattern[:-2] or n.startswith(pattern[:-2] + ".") for n in names), pattern
            else:
                assert pattern in names, pattern


def test_server_modules_import_only_their_own_floor_or_below() -> None:
    violations = []
    for item in IMPORTS:
        if item.type_checking or item.source not in MODULES or item.target not in MODULES:
            continue
        if not (item.source == SERVER or item.source.startswith(SERVER + ".")):
            continue
        if not (item.target == SERVER or item.target.startswith(SERVER + ".")):
            continue
        source_floor, target_floor = _floor_of(item.source), _floor_of(item.target)
        if target_floor > source_floor:
            violations.append(
                f"{item.source} (floor {source_floor}) imports {item.target} (floor {target_floor}) "
                f"at line {item.line}{' inside a function' if item.in_function else ''}"
            )
    assert not violations, "\n".join(violations)


def test_the_server_imports_of_the_rest_of_meshagent_trio_are_the_transport_only() -> None:
    """Outside its own package the server uses the core and the WebSocket transport; the one
    other `meshagent_trio` import finds the package root for a subprocess (process.py)."""
    outside = {
        (_relative(item.source), item.target)
        for item in IMPORTS
        if not item.type_checking
        and (item.source == SERVER or item.source.startswith(SERVER + "."))
        and item.target.split(".")[0] == "meshagent_trio"
        and not (item.target == SERVER or item.target.startswith(SERVER + "."))
    }
    assert outside <= {("app", "meshagent_trio.websocket"), ("rooms.connection", "meshagent_trio.websocket"), ("process", "meshagent_trio")}, outside


# --- the core stands alone -------------------------------------------------------------------


def test_the_core_imports_nothing_from_the_adapters() -> None:
    offending = [
        f"{item.source} imports {item.target} at line {item.line}"
        for item in IMPORTS  # TYPE_CHECKING imports included: the core must not even name them
        if (item.source == CORE or item.source.startswith(CORE + "."))
        and item.target.split(".")[0] in ADAPTERS
    ]
    assert not offending, "\n".join(offending)


def test_the_core_loads_no_adapter_by_name() -> None:
    """No `importlib.import_module("meshagent_trio…")` / `__import__(...)` either."""
    offending = []
    for module, (path, _) in MODULES.items():
        if not (module == CORE or module.startswith(CORE + ".")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name not in ("import_module", "__import__"):
                continue
            for argument in node.args[:1]:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    if argument.value.split(".")[0] in ADAPTERS:
                        offending.append(f"{module} line {node.lineno}: {name}({argument.value!r})")
    assert not offending, "\n".join(offending)

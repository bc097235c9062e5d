"""The package's import graph, read with `ast` (nothing is imported): no circle between modules or between rooms,
and no arrow from a lower room to a higher one."""
import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "t2l_fast"

# Lowest first: a room may import its own modules and any room listed before it, never one listed after it.
# The top-level modules form the room "base" (the package's __init__, io, errors, optional, video_ops), except
# predict.py and scoring.py: applications of models, text and data, they are the room "predict". So runtime never
# imports deploy, nothing imports cli, and only cli imports demo.
ROOM_ORDER = ["base", "models", "text", "data", "runtime", "predict", "deploy", "training", "perf", "demo", "cli"]
APPLICATION_MODULES = {"t2l_fast.predict": "predict", "t2l_fast.scoring": "predict"}


def module_name(path: Path) -> str:
    """Dotted name of the module in `path`."""
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    """Every module of t2l_fast by dotted name."""
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The t2l_fast modules that module `name` imports anywhere (inside functions too), relative imports resolved;
    `from package import name` counts as importing the submodule `name` when there is one, else the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            imported.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                            for alias in node.names)
    return {_owning_module(dotted, modules) for dotted in imported} - {"", name}


def _owning_module(dotted: str, modules: set[str]) -> str:
    """The longest prefix of `dotted` that is a t2l_fast module ("" for anything outside the package)."""
    while dotted and dotted not in modules:
        dotted = dotted.rpartition(".")[0]
    return dotted


def import_graph() -> dict[str, set[str]]:
    """Module -> the t2l_fast modules it imports."""
    modules = package_modules()
    return {name: imported_modules(path, name, set(modules)) for name, path in modules.items()}


def room(module: str) -> str:
    """The room a module lives in: its sub-package, or "base" / "predict" for modules at the package's top level."""
    parts = module.split(".")
    if len(parts) > 1 and (PACKAGE_ROOT / parts[1]).is_dir():
        return parts[1]
    return APPLICATION_MODULES.get(module, "base")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each as a sorted list."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycle_edges(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """The edges inside one strongly connected component, as 'a -> b' lines."""
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]


def room_graph(graph: dict[str, set[str]]) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[str]]]:
    """Room -> the rooms it imports, and the module edges behind each room edge."""
    rooms, edges = {}, {}
    for source, targets in graph.items():
        for target in targets:
            if room(source) != room(target):
                rooms.setdefault(room(source), set()).add(room(target))
                edges.setdefault((room(source), room(target)), []).append(f"{source} -> {target}")
    return rooms, edges


def test_the_walk_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "t2l_fast.models.graphs" in graph["t2l_fast.runtime.torch_runner"]  # inside __init__, relative
    assert "t2l_fast.demo" in graph["t2l_fast.cli.demo"]  # inside the handler
    assert "t2l_fast.errors" in graph["t2l_fast.io"]  # module level, relative


def test_every_room_has_its_place_in_the_order():
    rooms = {room(module) for module in package_modules()}
    assert rooms <= set(ROOM_ORDER), f"rooms missing from ROOM_ORDER: {sorted(rooms - set(ROOM_ORDER))}"


def test_no_circle_between_modules():
    graph = import_graph()
    cycles = find_cycles(graph)
    message = "\n\n".join("\n".join(cycle_edges(graph, component)) for component in cycles)
    assert not cycles, f"import circles between modules:\n{message}"


def test_no_circle_between_rooms():
    rooms, edges = room_graph(import_graph())
    cycles = find_cycles(rooms)
    message = "\n".join(line for component in cycles for a in component for b in sorted(rooms.get(a, ()))
                        if b in component for line in edges[a, b])
    assert not cycles, f"import circles between rooms {cycles}:\n{message}"


def test_rooms_import_only_lower_rooms():
    graph = import_graph()
    rank = {name: position for position, name in enumerate(ROOM_ORDER)}
    upward = sorted(f"{source} ({room(source)}) -> {target} ({room(target)})"
                    for source, targets in graph.items() for target in targets
                    if rank[room(target)] > rank[room(source)])
    assert not upward, "imports from a lower room to a higher one:\n" + "\n".join(upward)

"""Architecture rules: rooms talk through public names, and imports form layers.

A *room* is a subpackage of carbonsim (``carbonsim.engine``, ...) or a top-level module
(``carbonsim.results``, ``carbonsim._format``, ...); the package ``__init__`` (the façade)
is the room ``carbonsim``. The import graph is read with :mod:`ast` from every module under
``carbonsim/``: ``import x`` and ``from x import y`` at any nesting (module level, inside
functions, under ``if TYPE_CHECKING:``) and ``importlib.import_module`` /
``importlib.resources.files`` calls on a literal ``carbonsim...`` name. The rules:

(a) no import cycle among modules;
(b) no module imports a private name (``_x``, or anything under a private module
    ``_x``) from another room; the top-level helper modules ``carbonsim._format`` and the
    like are rooms of their own, used through their public names;
(c) no module is longer than :data:`MAX_LINES` lines;
(d) a room imports only rooms of lower :data:`LAYERS`, even lazily (the façade is the
    top: it loads everything on attribute access and nothing imports it);
(e) no module reads a private attribute it does not define (``ledger._x`` where ``_x``
    is defined elsewhere).

Known exceptions are listed below, each with its reason or with who must fix it; an entry
that no longer matches anything fails the test, so the lists shrink as fixes land.

Run this file as a script to print the strongly connected components of the full graph
(exceptions included) and the edges inside them: ``python tests/unit/test_architecture.py``.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = "carbonsim"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / PACKAGE
MAX_LINES = 1000

#: Rooms from the bottom up. A room may import its own modules and rooms of lower layers;
#: rooms of one layer are siblings and do not import each other, except in layer 0 (the
#: package's shared helpers, which may use one another).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "carbonsim._cells",
            "carbonsim._compiled",
            "carbonsim._deprecation",
            "carbonsim._format",
            "carbonsim._io",
            "carbonsim._random",
            "carbonsim._registry",
            "carbonsim._validation",
            "carbonsim._version",
        }
    ),
    frozenset({"carbonsim.scenario", "carbonsim.clearing", "carbonsim.agents"}),
    frozenset({"carbonsim.market"}),
    frozenset({"carbonsim.results"}),
    frozenset({"carbonsim.engine", "carbonsim.plot"}),
    frozenset(
        {"carbonsim.calibration", "carbonsim.ensemble", "carbonsim.testing", "carbonsim.bench"}
    ),
    frozenset({"carbonsim.cli"}),
    frozenset({"carbonsim.__main__", "carbonsim"}),
)

#: Upward imports allowed by design: (importer, imported module) -> reason. They are left
#: out of the cycle check (a) and the layer check (d), and must stay inside functions.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("carbonsim.results", "carbonsim.plot"): (
        "the public accessor Result.plot (result.plot.price(), documented in README and the "
        "user guide) needs carbonsim.plot.PlotAccessor, while plot draws Results and imports "
        "carbonsim.results; the import is deferred to the first result.plot, so importing "
        "results never loads plot"
    ),
}

#: Imports in other people's files that break (a) or (d), to be removed by their owners:
#: (importer, imported module) -> who fixes it, and how.
PENDING_EDGES: dict[tuple[str, str], str] = {}

#: Private imports across rooms, to be removed by their owners: (importer, first private
#: dotted name reached, e.g. "carbonsim.clearing._ticks") -> who fixes it, and how. Empty:
#: the last ones (engine and testing importing carbonsim.clearing._ticks) went with the
#: clearing rename to carbonsim.clearing.ticks.
PENDING_PRIVATE_IMPORTS: dict[tuple[str, str], str] = {}

#: Modules longer than MAX_LINES lines: path under carbonsim/ -> who splits it.
LONG_MODULES: dict[str, str] = {}

#: Private attributes read on objects of other modules: (module, attribute) -> who fixes it.
PENDING_PRIVATE_ATTRIBUTES: dict[tuple[str, str], str] = {}


# ---------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``name`` from module ``target`` at ``line``."""

    source: str
    target: str
    name: str  # the dotted name imported: a module, or module.attribute
    line: int
    kind: str  # "module", "function", "type-checking" or "dynamic"

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.name} ({self.kind})"


@cache
def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its __init__.py)."""
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def room(module: str) -> str:
    """``carbonsim.engine.state`` -> ``carbonsim.engine``; ``carbonsim`` -> ``carbonsim``."""
    return ".".join(module.split(".")[:2])


def _is_private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _known_module(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is a module of the package."""
    parts = dotted.split(".")
    while parts:
        name = ".".join(parts)
        if name in modules():
            return name
        parts.pop()
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


_DYNAMIC_CALLS = frozenset({"import_module", "__import__", "files"})


def _module_strings(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "literal"`` assignments (package names passed to resources)."""
    out = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            out.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return out


def _imports_of(module: str, path: Path) -> Iterator[tuple[str, int, str]]:
    """(imported dotted name, line, kind) of every package import in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    strings = _module_strings(tree)
    is_package = path.name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]

    def visit(node: ast.AST, kind: str) -> Iterator[tuple[str, int, str]]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            kind = "function" if kind == "module" else kind
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.body:
                yield from visit(statement, "type-checking")
            for statement in node.orelse:
                yield from visit(statement, kind)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, kind
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                origin = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                yield f"{origin}.{alias.name}", node.lineno, kind
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            text = None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                text = arg.value
            elif isinstance(arg, ast.Name):
                text = strings.get(arg.id)
            if called in _DYNAMIC_CALLS and text is not None:
                yield text, node.lineno, "dynamic"
        for child in ast.iter_child_nodes(node):
            yield from visit(child, kind)

    for name, line, kind in visit(tree, "module"):
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            yield name, line, kind


@cache
def edges() -> tuple[Edge, ...]:
    """Every import of a package module by another.

    Left out: a module importing itself, and a module reading its own package's data
    (``resources.files`` of an enclosing package, which is imported already).
    """
    out = []
    for module, path in modules().items():
        for name, line, kind in _imports_of(module, path):
            target = _known_module(name)
            if target is None or target == module:
                continue
            if kind == "dynamic" and module.startswith(target + "."):
                continue  # resources.files() of its own package: data, already imported
            out.append(Edge(module, target, name, line, kind))
    return tuple(out)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def import_cycles(leave_out: Iterable[tuple[str, str]] = ()) -> list[list[str]]:
    """Strongly connected components of the import graph without the ``leave_out`` edges."""
    skip = set(leave_out)
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges():
        if (e.source, e.target) not in skip:
            graph[e.source].add(e.target)
    return strongly_connected(graph)


def _layer(module: str) -> int:
    r = room(module)
    for i, rooms in enumerate(LAYERS):
        if r in rooms:
            return i
    raise AssertionError(f"{module}: room {r} is in no layer; add it to LAYERS")


def _private_part(e: Edge) -> str | None:
    """The private module or name ``e`` reaches into, if it crosses into another room."""
    if room(e.source) == room(e.target):
        return None
    parts = e.name.split(".")
    depth = len(room(e.target).split("."))
    for i in range(depth, len(parts)):
        if _is_private(parts[i]):
            return ".".join(parts[: i + 1])
    return None


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _foreign_private_attributes(path: Path) -> Iterator[tuple[int, str]]:
    """Loads of ``obj._x`` (obj not self/cls) where the module never defines ``_x``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            defined.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            defined.add(node.value)  # __slots__ entries, getattr(obj, "_x")
        elif isinstance(node, ast.alias):
            defined.add(node.asname or node.name.split(".")[-1])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and _is_private(node.attr)
            and node.attr not in defined
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            yield node.lineno, node.attr


# ---------------------------------------------------------------------------- tests
def test_the_graph_sees_every_kind_of_import() -> None:
    """The scanner is not vacuous: one known edge of each kind is found."""
    found = {(e.source, e.target, e.kind) for e in edges()}
    assert ("carbonsim.plot", "carbonsim.results", "module") in found
    assert ("carbonsim.cli", "carbonsim.plot", "function") in found
    assert ("carbonsim", "carbonsim.results", "type-checking") in found
    assert ("carbonsim.scenario.loader", "carbonsim.scenario.builtin", "dynamic") in found
    assert ("carbonsim.engine", "carbonsim.engine.simulation", "module") in found  # relative


def test_the_private_rule_looks_below_the_room() -> None:
    def part(source: str, name: str) -> str | None:
        target = _known_module(name)
        assert target is not None
        return _private_part(Edge(source, target, name, 1, "module"))

    assert part("carbonsim.calibration.fit", "carbonsim._format._key") == "carbonsim._format._key"
    assert part("carbonsim.engine.state", "carbonsim.clearing.batch._x") == (
        "carbonsim.clearing.batch._x"
    )
    assert part("carbonsim.cli", "carbonsim._format.to_toml") is None  # a public helper
    assert part("carbonsim.cli", "carbonsim._version.__version__") is None  # a dunder
    assert part("carbonsim.clearing.order_book", "carbonsim.clearing._order_book_numba") is None


def test_no_import_cycles() -> None:
    cycles = import_cycles(leave_out=[*ALLOWED_UPWARD, *PENDING_EDGES])
    inside = [
        str(e) for cycle in cycles for e in edges() if e.source in cycle and e.target in cycle
    ]
    assert not cycles, "import cycles:\n" + "\n".join(inside)


def test_imports_follow_the_layers() -> None:
    upward = [
        str(e)
        for e in edges()
        if room(e.source) != room(e.target)
        and (e.source, e.target) not in ALLOWED_UPWARD
        and (e.source, e.target) not in PENDING_EDGES
        and (_layer(e.target) > _layer(e.source) or (_layer(e.target) == _layer(e.source) > 0))
    ]
    assert not upward, "imports of a higher or sibling room:\n" + "\n".join(upward)


def test_allowed_upward_imports_are_deferred_and_still_needed() -> None:
    for (source, target), reason in ALLOWED_UPWARD.items():
        assert reason
        kinds = {e.kind for e in edges() if (e.source, e.target) == (source, target)}
        assert kinds, f"{source} no longer imports {target}: remove it from ALLOWED_UPWARD"
        assert kinds <= {"function", "type-checking"}, (source, target, kinds)


def test_pending_edges_are_still_there() -> None:
    present = {(e.source, e.target) for e in edges()}
    fixed = sorted(set(PENDING_EDGES) - present)
    assert not fixed, f"fixed, remove from PENDING_EDGES: {fixed}"


def test_nothing_inside_the_package_imports_the_facade() -> None:
    importers = sorted(
        {e.source for e in edges() if e.target == PACKAGE}
        - {s for s, t in PENDING_EDGES if t == PACKAGE}
    )
    assert not importers, f"import the public module instead of the façade: {importers}"


def test_no_private_imports_across_rooms() -> None:
    found = {(e.source, part): e for e in edges() if (part := _private_part(e)) is not None}
    unexpected = [str(e) for key, e in sorted(found.items()) if key not in PENDING_PRIVATE_IMPORTS]
    assert not unexpected, "private names imported from another room:\n" + "\n".join(unexpected)
    fixed = sorted(set(PENDING_PRIVATE_IMPORTS) - set(found))
    assert not fixed, f"fixed, remove from PENDING_PRIVATE_IMPORTS: {fixed}"


def test_modules_are_at_most_1000_lines() -> None:
    lengths = {
        path.relative_to(PACKAGE_DIR).as_posix(): _lines(path) for path in modules().values()
    }
    long = {p: n for p, n in lengths.items() if n > MAX_LINES}
    assert sorted(set(long) - set(LONG_MODULES)) == [], f"over {MAX_LINES} lines: {long}"
    fixed = sorted(set(LONG_MODULES) - set(long))
    assert not fixed, f"now at most {MAX_LINES} lines, remove from LONG_MODULES: {fixed}"


def test_no_private_attributes_of_other_modules() -> None:
    found = {
        (module, attr): line
        for module, path in modules().items()
        for line, attr in _foreign_private_attributes(path)
    }
    unexpected = [
        f"{module}:{line}: .{attr}"
        for (module, attr), line in sorted(found.items())
        if (module, attr) not in PENDING_PRIVATE_ATTRIBUTES
    ]
    assert not unexpected, "private attributes defined elsewhere:\n" + "\n".join(unexpected)
    fixed = sorted(set(PENDING_PRIVATE_ATTRIBUTES) - set(found))
    assert not fixed, f"fixed, remove from PENDING_PRIVATE_ATTRIBUTES: {fixed}"


def main() -> int:
    """Print the cycles of the whole graph with their edges, then those the lists leave."""
    for title, leave_out in (
        ("every import", []),
        ("without ALLOWED_UPWARD and PENDING_EDGES", [*ALLOWED_UPWARD, *PENDING_EDGES]),
    ):
        cycles = import_cycles(leave_out)
        print(f"{title}: {len(cycles)} cycle(s)")
        for cycle in cycles:
            print(f"  {len(cycle)} modules: {', '.join(cycle)}")
            for e in edges():
                if (
                    e.source in cycle
                    and e.target in cycle
                    and (e.source, e.target) not in leave_out
                ):
                    print(f"    {e}")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())

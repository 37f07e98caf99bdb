"""The module layout: fastnn's import graph has no cycle and its arrows point one way.

Why it is built this way: the design's arrows are
``network/training -> layers/losses/optimizers -> backend ops -> C``.  A cycle
(``optimizers`` importing ``network``, as it once did) or a layer importing a
backend module hides a dependency that makes the pieces impossible to change
or test apart.  The graph is read from the source with ``ast`` -- every
``import`` and ``from ... import`` statement of fastnn/*.py and fastnn/*/*.py,
also inside functions -- so a lazy import cannot hide an arrow.  Imports under
``if TYPE_CHECKING:`` are left out: they are never run, they only name types
for the type checker.
"""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fastnn")

#: The pieces below the network: they compute only through the ops object
#: they are handed, so they import nothing from fastnn.backends ...
PIECES = ("fastnn.layers", "fastnn.losses", "fastnn.optimizers")
#: ... except these (importer, imported), each with its reason.
ALLOWED_BACKEND_IMPORTS = {
    ("fastnn.losses", "fastnn.backends"):
        "Loss.__call__ / Loss.gradient, the user-facing convenience, run on the default "
        "backend: the registry is imported inside _default_ops when one is called",
}


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree, module, is_package, modules):
    """The fastnn modules ``module`` imports (statements under TYPE_CHECKING left out).

    ``from P import x`` imports the module ``P.x`` when there is one, else
    the name ``x`` of ``P``.
    """
    found = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "fastnn")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "fastnn":
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph():
    """{module: set of the fastnn modules it imports}, over fastnn/*.py and fastnn/*/*.py."""
    files = []
    for entry in sorted(os.listdir(ROOT)):
        path = os.path.join(ROOT, entry)
        if entry.endswith(".py"):
            files.append(path)
        elif os.path.isdir(path) and not entry.startswith(("_", ".")):
            files += [os.path.join(path, f) for f in sorted(os.listdir(path))
                      if f.endswith(".py")]
    modules = {_module_name(path): path for path in files}
    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        imported = _imports(tree, name, path.endswith("__init__.py"), modules)
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def _cycle(graph):
    """One cycle of ``graph`` as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_the_graph_is_read():
    # guards the test itself: these arrows exist, so the reader sees them
    graph = import_graph()
    assert "fastnn.training" in graph["fastnn.network"]
    assert "fastnn.optimizers" in graph["fastnn.training"]
    assert "fastnn.backends.numpy_ops" in graph["fastnn.backends"]
    assert "fastnn.io" in graph["fastnn.network"]           # "from . import io"
    assert "fastnn.backends" in graph["fastnn.losses"]      # inside a function


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("piece", PIECES)
def test_pieces_import_no_backend(piece):
    graph = import_graph()
    bad = sorted(m for m in graph[piece]
                 if m.split(".")[:2] == ["fastnn", "backends"]
                 and (piece, m) not in ALLOWED_BACKEND_IMPORTS)
    assert not bad, (f"{piece} imports {bad}: it must compute through the ops object it is "
                     "handed (see ALLOWED_BACKEND_IMPORTS for the exceptions)")


@pytest.mark.parametrize("piece", PIECES)
def test_pieces_import_neither_network_nor_training(piece):
    graph = import_graph()
    above = sorted(m for m in graph[piece]
                   if m in ("fastnn.network", "fastnn.training", "fastnn.io",
                            "fastnn.interop.torch", "fastnn.sklearn"))
    assert not above, f"{piece} imports {above}, which sit above it"


def test_allow_list_is_used():
    graph = import_graph()
    for importer, imported in ALLOWED_BACKEND_IMPORTS:
        assert imported in graph[importer], f"{importer} no longer imports {imported}"


def test_history_pickled_under_its_old_module_still_loads():
    """History moved to fastnn.training; pickles made before name fastnn.network.History,
    which stays importable as an alias."""
    import pickle

    import fastnn
    from fastnn.network import History as OldName
    from fastnn.training import History
    assert OldName is History and fastnn.History is History
    history = History()
    history._extend({"loss": [0.5, 0.25]})
    old = pickle.dumps(history, protocol=0).replace(b"cfastnn.training\nHistory\n",
                                                    b"cfastnn.network\nHistory\n")
    assert b"fastnn.network" in old
    loaded = pickle.loads(old)
    assert loaded.loss == [0.5, 0.25] and loaded.epochs == [0, 1]

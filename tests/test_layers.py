"""The package's modules form layers: no import circle, and no module importing the package root.

Read from the source (ast), every import counted, also the ones inside a function: an import inside a
function hides a circle from Python, not from a reader, who must still know both modules to read either.
`from . import arms` imports the module hardbatch.arms; `from . import __version__` imports the package root
(hardbatch/__init__.py), which sits above every module: that is the import running back up.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hardbatch"


def module_name(path):
    """hardbatch/methods/base.py -> 'hardbatch.methods.base'; hardbatch/methods/__init__.py -> 'hardbatch.methods'."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    """{module name: path} for every module of the package."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name, path, known):
    """The package's modules that module `name` imports (a package's __init__ counts as the package itself)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "hardbatch"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if base.split(".")[0] != "hardbatch":
                continue
            # `from base import x`: the submodule base.x if there is one, else a name defined in base
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return found - {name}


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges):
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def upward(edges):
    """(module, package) pairs where a module imports the root of a package it lives in (its __init__)."""
    return sorted((m, p) for m, targets in edges.items() for p in targets
                  if m.startswith(p + ".") and m != "hardbatch.__main__")


def test_the_reader_sees_every_import():
    edges = graph()
    assert "hardbatch.record" in edges["hardbatch.checkpoint"]          # from .record import atomic_write
    assert "hardbatch.arms" in edges["hardbatch.compare"]               # from . import arms
    assert "hardbatch.methods" in edges["hardbatch.arms"]               # from . import methods (a package)
    assert "hardbatch.methods.base" in edges["hardbatch.methods.hardbatch"]   # from .base import ...
    assert "hardbatch.data" in edges["hardbatch.methods.base"]          # from ..data import ...


def test_the_checks_catch_a_circle_and_an_import_back_up():
    edges = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a"}, "a": set()}
    assert cycles(edges) == [["a.x", "a.y", "a.z"]]
    assert upward(edges) == [("a.w", "a")]


def test_no_import_circle():
    assert cycles(graph()) == []


def test_no_module_imports_the_package_above_it():
    """hardbatch/__init__.py imports its modules lazily; a module importing it back would run in a circle.
    __main__ is the exception that proves the rule: `python -m hardbatch` runs it after the package."""
    assert upward(graph()) == []

"""The package's layout holds its promises: the layers of the README's diagram, science modules
that read no files, dependencies visible at the top of each module, one name per knob."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "permafrost"

#: modules allowed to import permafrost.io: the edges (io itself, the file-facing workflows,
#: the command-line app, the pipeline engine and its steps, the pipeline-file parser)
EDGES = ("io/", "workflows/", "cli/", "pipeline/", "config.py")

#: function-level imports of the package's own modules that stay, with the reason
DEFERRED_OK = {
    # the command-line app imports a command's modules only when the command runs, so that
    # `permafrost --help` starts in a third of a second (benchmarks/startup.py)
    "cli/",
    # PEP 562 lazy public API: `import permafrost` loads neither XGBoost nor Dask
    "__init__.py",
    "__main__.py",
    # its Numba kernels (the optional `fast` extra) are imported at first use, so that a
    # missing Numba is a recorded fallback to XGBoost, not an import error
    "compiled_trees.py",
}


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def _rel(p: Path) -> str:
    return p.relative_to(PKG).as_posix()


def _own_imports(tree: ast.AST, module: str) -> list[tuple[ast.AST, str, bool]]:
    """(node, imported module, inside a function) for every import of ``permafrost.*``."""
    out = []
    package = module.rsplit(".", 1)[0]

    def visit(node, in_func: bool):
        for child in ast.iter_child_nodes(node):
            inner = in_func or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.ImportFrom):
                name = child.module or ""
                if child.level:  # relative import
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    name = ".".join(base + ([name] if name else []))
                if name.startswith("permafrost"):
                    out.append((child, name, in_func))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("permafrost"):
                        out.append((child, a.name, in_func))
            visit(child, inner)

    visit(tree, False)
    return out


def _module_name(p: Path) -> str:
    parts = list(p.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts)


def test_science_modules_read_no_files():
    """Only the edges import permafrost.io: science takes and returns objects."""
    bad = []
    for p in _modules():
        rel = _rel(p)
        if rel.startswith(EDGES):
            continue
        for node, name, _ in _own_imports(ast.parse(p.read_text()), _module_name(p)):
            if name == "permafrost.io" or name.startswith("permafrost.io."):
                bad.append(f"{rel}:{node.lineno} imports {name}")
    assert not bad, "science modules importing io:\n" + "\n".join(bad)


def test_no_private_module_is_imported_from_outside_its_package():
    """Every layer reaches another package only through its public modules: nothing outside
    ``permafrost/io`` imports ``permafrost.io._*`` (and likewise for every subpackage)."""
    bad = []
    for p in _modules():
        mod = _module_name(p)
        for node, name, _ in _own_imports(ast.parse(p.read_text()), mod):
            names = [name] + [f"{name}.{a.name}" for a in getattr(node, "names", [])
                              if isinstance(node, ast.ImportFrom)]
            for n in names:
                parts = n.split(".")
                private = [i for i, part in enumerate(parts) if part.startswith("_")
                           and not part.startswith("__")]
                if not private:
                    continue
                i = private[0]
                # a private module belongs to its package; a private name to its module's
                # subpackage (io, labels, area...), or to its module at the top level
                if (ROOT / Path(*parts[:i])).is_dir():
                    owner = parts[:i]
                else:
                    owner = parts[:i] if i == 2 else parts[:i - 1]
                if not mod.startswith(".".join(owner) + "."):
                    bad.append(f"{_rel(p)}:{node.lineno} imports {n}")
    assert not bad, "private modules imported from outside their package:\n" + "\n".join(bad)


def test_dependencies_are_at_the_top_of_each_module():
    bad = []
    for p in _modules():
        rel = _rel(p)
        if rel.startswith(tuple(DEFERRED_OK)):
            continue
        for node, name, in_func in _own_imports(ast.parse(p.read_text()), _module_name(p)):
            if in_func:
                bad.append(f"{rel}:{node.lineno} imports {name} inside a function")
    assert not bad, "function-level imports of the package:\n" + "\n".join(bad)


def _readme_layout() -> list[str]:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- layout -->\s*```[a-z]*\n(.*?)```", text, flags=re.S)
    assert m, "README.md has no layout block (<!-- layout --> followed by a code block)"
    names = []
    stack: list[tuple[int, str]] = []
    for line in m.group(1).splitlines():
        mm = re.match(r"^([\s│├└─]*)([\w./]+)", line)
        if not mm or not mm.group(2).strip():
            continue
        depth = len(mm.group(1))
        name = mm.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        path = "/".join([s[1].rstrip("/") for s in stack] + [name])
        if name.endswith("/"):
            stack.append((depth, name))
        names.append(path.rstrip("/"))
    return names


def test_readme_layout_is_the_package_layout():
    """Every module and folder of the package appears in the README's layout block, and
    nothing else does."""
    listed = set(_readme_layout())
    actual = {"permafrost"}
    for p in _modules():
        rel = p.relative_to(ROOT)
        if p.name in ("__init__.py", "__main__.py"):
            actual.add(rel.parent.as_posix())
            continue
        actual.add(rel.as_posix())
        actual.add(rel.parent.as_posix())
    assert listed == actual, (f"in the README only: {sorted(listed - actual)}; "
                              f"in the package only: {sorted(actual - listed)}")


@pytest.mark.parametrize("name", ["chunk_rows", "chunks_rows", "block_cells"])
def test_one_name_per_block_size_knob(name):
    """Square blocks are ``chunk`` (pixels a side), row stripes ``block_rows``; no other
    spelling in the package's signatures."""
    bad = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                bad += [f"{_rel(p)}:{node.lineno} {node.name}({a.arg})" for a in args
                        if a.arg == name]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.target.id == name:
                    bad.append(f"{_rel(p)}:{node.lineno} field {name}")
    assert not bad, "\n".join(bad)

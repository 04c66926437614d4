"""The shape of the package, checked from its source (AST, nothing imported or run).

The layer order below is the one docs/architecture.md draws: a module may import its own
layer and the layers below it, never one above, and no chain of imports may come back to
where it started. Files stay a sitting long, calls short, and nothing cites a file outside
the repository.
"""

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "qkit"

# bottom first; a module belongs to the first entry its dotted name starts with
LAYERS = [
    ("core", "data"),  # the math everything stands on, and the data files: leaves
    ("reference",),  # readable NumPy twins
    ("kernels",),  # numba kernels, their IR, dispatch and the numbered versions
    ("formats",),  # number grids beyond the uniform one
    ("engine",),  # float models traced, calibrated and run on integers; fbgemm parity
    ("models",),  # the kit's models and their data
    ("topics",),  # what the lessons compute
    ("studies",),  # measurement: timing, bench, eval, precompute drivers, cached results
    ("lab",),  # widgets, plots, exercises
]
# the package's front door, its command line and the old-name aliases sit above everything;
# so does every ``__main__`` (a program, imported by nobody)
TOP = {"qkit", "qkit.__main__", "qkit._moved"}
MAX_LINES = 400
MAX_POSITIONAL = 8


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict) -> set[str]:
    """The qkit modules ``name`` imports anywhere in its source (function bodies included):
    ``from a.b import c`` is ``a.b.c`` where that is a module, else ``a.b``."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("qkit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("qkit"):
                continue
            for alias in node.names:
                found.add(f"{mod}.{alias.name}" if f"{mod}.{alias.name}" in known else mod)
    return {m for m in found if m != name}


def layer(name: str):
    if name in TOP or name.endswith("__main__"):
        return len(LAYERS)
    rest = name.split(".", 1)[1]
    for i, prefixes in enumerate(LAYERS):
        if any(rest == p or rest.startswith(p + ".") for p in prefixes):
            return i
    return None


GRAPH = {name: imports(name, path, modules()) for name, path in modules().items()}


def test_every_module_has_a_layer():
    assert not [m for m in GRAPH if layer(m) is None], "add new top-level modules to LAYERS"


def test_every_import_points_down():
    def named(m):
        return m if layer(m) == len(LAYERS) else f"{m} ({LAYERS[layer(m)][0]})"

    upward = [f"{named(m)} imports {named(d)}"
              for m, deps in GRAPH.items() for d in deps
              if layer(m) < len(LAYERS) and layer(d) is not None and layer(d) > layer(m)]
    assert not upward, "\n".join(upward)


def _cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert not _cycles(GRAPH), _cycles(GRAPH)


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_module_is_a_sitting_long(name):
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines (split it by idea)"


def test_no_call_has_more_than_eight_positional_arguments():
    long_calls = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                positional = [a for a in node.args if not isinstance(a, ast.Starred)]
                if len(positional) > MAX_POSITIONAL:
                    long_calls.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
    assert not long_calls, "pack the arguments in a named structure:\n" + "\n".join(long_calls)


def test_flags_are_keyword_only():
    # two or more positional parameters defaulting to True/False read as f(x, 8, True, False):
    # such flags go after a ``*``
    runs = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                args, defaults = node.args.args, node.args.defaults
                flags = [a.arg for a, d in zip(args[len(args) - len(defaults):], defaults,
                                               strict=True)
                         if isinstance(d, ast.Constant) and isinstance(d.value, bool)]
                if len(flags) >= 2:
                    runs.append(f"{name}.{node.name}: {flags}")
    assert not runs, "\n".join(runs)


def test_kernels_use_one_vocabulary_for_integer_bounds():
    # integer bounds are qmin/qmax everywhere; lo/hi name the ends of a real-valued range,
    # which the kernels and references never take
    for folder in ("kernels", "reference"):
        for path in (PACKAGE / folder).rglob("*.py"):
            names = {n.id for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.Name)}
            assert not names & {"lo", "hi", "kq", "ko", "kp"}, path


def test_no_private_helper_crosses_a_file():
    crossing = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qkit"):
                crossing += [f"{name} imports {node.module}.{a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")
                             and f"{node.module}.{a.name}" not in modules()]  # a module
    assert not crossing, "\n".join(crossing)


MAX_FUNCTION_LINES = 60  # the habit is ~40 (docs/architecture.md); this is the hard stop


def test_functions_are_short():
    long_ones = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_ones.append(f"{name}.{node.name}: {length} lines")
    assert not long_ones, "\n".join(long_ones)


def test_only_the_lab_draws():
    # figures come from qkit.lab.plots (and the widget base that shows them): computation
    # modules and widget factories never import pyplot (qkit.data reads matplotlib's bundled
    # sample photo, which is data, not drawing)
    drawing = {"qkit.lab.explorer"} | {m for m in modules() if m.startswith("qkit.lab.plots")}
    for name, path in modules().items():
        if name in drawing:
            continue
        tree = ast.parse(path.read_text())
        used = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        used |= {f"{n.module}.{a.name}" for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom) and n.module for a in n.names}
        assert not any(u.startswith("matplotlib.pyplot") for u in used), name


def test_notebook_cells_are_thin():
    # logic lives in qkit, where it is tested: a code cell is a few lines that call it, and
    # draws only through qkit.lab (``plt.show()`` aside)
    drawing = re.compile(r"plt\.(?!show\b)\w+|\bax\.\w+|\.plot\(")
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            lines = [line for line in src.splitlines() if line.strip()]
            assert len(lines) <= 12, f"{nb.name} cell {i}: {len(lines)} lines"
            assert not drawing.search(src), f"{nb.name} cell {i} draws: {drawing.search(src)}"


OUTSIDE = re.compile(r"QUANT_FACTS|PERF_FACTS|TOOLING\.md|STYLE\.md|\.\./shared")


def test_nothing_cites_a_file_outside_the_repository():
    files = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (
        ".py", ".md", ".ipynb", ".cfg", ".toml", ".yml") and ".venv" not in p.parts
        and ".git" not in p.parts and p != Path(__file__)] + [ROOT / "Makefile"]
    cited = [str(p.relative_to(ROOT)) for p in files if OUTSIDE.search(p.read_text())]
    assert not cited, cited


def test_architecture_doc_lists_the_layers_in_order():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    positions = [doc.find(f"`qkit/{prefixes[0]}") for prefixes in LAYERS]
    assert -1 not in positions and positions == sorted(positions), positions

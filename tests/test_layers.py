"""The package's layers, read from the README's code map and held against the code's own imports.

Every module of smlib is in exactly one layer of the code map: method, fast path or study. A module may import its
own layer and the layers below it (study -> fast path -> method), never one above, and no import circle may close,
whether through imports at the top of a module or inside a function. A package's face (its __init__) sits at the
layer of what it re-exports. Budget: ~1 s (files are parsed, nothing is imported)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "smlib"
LAYERS = ("method", "fast path", "study")  # bottom to top
HEADERS = {"**Method**": "method", "**Fast path**": "fast path", "**Study**": "study"}
# Edges the code may have against the rule while a move is under way, each with the step that removes it; the test
# fails when one is gone and still listed, so the list only shrinks. Empty: every module follows the rule.
KNOWN: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every smlib module this one imports, at its top or inside a function ('from . import x' counts x when x
    is a module, else the package)."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name.split(".")[0] == "smlib"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != "smlib":
                continue
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        for target in targets:
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def code_map() -> dict[str, str]:
    """Module -> layer, as the README's code map lists them."""
    section = (ROOT / "README.md").read_text().split("## Code map", 1)[1].split("\n## ", 1)[0]
    layer, out = None, {}
    for block in re.split(r"\n(?=- |\*\*)", section):
        header = next((h for h in HEADERS if block.startswith(h)), None)
        if header:
            layer = HEADERS[header]
            continue
        if not block.startswith("- `smlib/") or layer is None:
            continue
        head, _, tail = block.partition(":")
        for path in re.findall(r"`(smlib/[\w/]*?(?:\.py|/))`", head):
            if path.endswith(".py"):
                out[module_name(ROOT / path)] = layer
                continue
            package = path
            for token in re.findall(r"`([\w/]+)`", tail):
                if token.endswith("/"):
                    package = path + token
                else:
                    out[module_name(ROOT / f"{package}{token}.py")] = layer
    return out


def layers() -> dict[str, str]:
    """Every module's layer: the code map's, and for a package's face (or its __main__) the highest layer of what
    it imports."""
    listed, edges = code_map(), graph()
    out = dict(listed)
    faces = sorted((n for n, p in modules().items() if p.name in ("__init__.py", "__main__.py") and n not in listed),
                   key=lambda n: -n.count("."))  # inner packages first
    for face in faces:
        out[face] = max((out.get(t, "method") for t in edges[face]), key=LAYERS.index, default="method")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]], layer: dict[str, str]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in edges.items() for b in targets
            if LAYERS.index(layer[b]) > LAYERS.index(layer[a])}


def test_the_code_map_lists_every_module_on_disk_exactly_once():
    listed = code_map()
    on_disk = {n for n, p in modules().items() if p.name not in ("__init__.py", "__main__.py")}
    assert set(listed) - on_disk == set(), "listed but not on disk"
    assert on_disk - set(listed) == set(), "on disk but not in the code map"
    text = (ROOT / "README.md").read_text().split("## Code map", 1)[1].split("\n## ", 1)[0]
    for header in HEADERS:
        assert text.count(header) == 1, header


def test_each_layer_states_its_size():
    """The code map's '(N modules, X.Yk lines' of each layer, package faces included, is what is on disk."""
    text = (ROOT / "README.md").read_text().split("## Code map", 1)[1].split("\n## ", 1)[0]
    layer, files = layers(), modules()
    for header, name in HEADERS.items():
        found = re.search(re.escape(header) + r" \((\d+) modules, ([\d.]+)k lines", text)
        assert found, f"{header} states no size"
        mine = [m for m, where in layer.items() if where == name]
        lines = sum(len(files[m].read_text().splitlines()) for m in mine)
        assert (int(found[1]), found[2]) == (len(mine), f"{lines / 1000:.1f}"), (header, len(mine), lines)


def test_imports_run_one_way_between_the_layers_and_close_no_circle():
    edges = graph()
    layer = layers()
    assert not cycles(edges), cycles(edges)
    wrong = upward(edges, layer)
    new = sorted(wrong - set(KNOWN))
    assert not new, "imports against the layers (a module may import its own layer and those below):\n" + "\n".join(
        f"{a} ({layer[a]}) -> {b} ({layer[b]})" for a, b in new)
    gone = sorted(set(KNOWN) - wrong)
    assert not gone, f"no longer in the code, so take them out of KNOWN: {gone}"


def test_the_checks_see_an_import_inside_a_function_a_circle_and_an_upward_edge(tmp_path):
    source = "def f():\n    from .record import run_dir\n    from smlib import tables\n"
    known = {"smlib.metrics": Path("metrics.py"), "smlib.record": Path("record.py"), "smlib.tables": Path("t.py"),
             "smlib": Path("__init__.py")}
    (tmp_path / "metrics.py").write_text(source)
    found = imports("smlib.metrics", tmp_path / "metrics.py", known)
    assert found == {"smlib.record", "smlib.tables"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert upward({"smlib.metrics": found}, {"smlib.metrics": "method", "smlib.record": "study",
                                             "smlib.tables": "study"}) == {("smlib.metrics", "smlib.record"),
                                                                           ("smlib.metrics", "smlib.tables")}

"""docs/architecture.md is the map of mtssl_nb. This test reads every import in the package, those inside functions too, and holds
the code to the map: every module is on it, every import of a module of the package points up the map's order and none makes a
circle, and third-party packages are imported at the top of each module. The exceptions are the ones the map names, with a
reason, in its table of exceptions; an exception the code no longer needs fails too, so the table stays true."""
import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "mtssl_nb"
MAP = (ROOT / "docs" / "architecture.md").read_text()


def package_modules() -> dict[str, Path]:
    "Every module of the package by its name below mtssl_nb ('tasks.core'); package folders' empty __init__ files are not modules here."
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        rel = p.relative_to(PKG).with_suffix("")
        if rel.name == "_modidx" or (rel.name == "__init__" and len(rel.parts) > 1): continue
        out["" if rel.parts == ("__init__",) else ".".join(rel.parts)] = p
    return out


def section(title: str) -> str:
    "The text of the map's section `## title`."
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", MAP, re.S | re.M)
    assert m, f"docs/architecture.md has no section '## {title}'"
    return m.group(1)


def map_order() -> list[str]:
    "The modules in the order the map lists them: the second column of each table row of its first section."
    order = []
    for line in section("Modules, in dependency order").splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cols) >= 3 and cols[0] not in ("notebook",) and not set(cols[0]) <= set("-: "):
            order += re.findall(r"`([\w.]+)`", cols[1])
    return order


def exceptions() -> dict[str, dict[str, str]]:
    "The map's named exceptions: module -> {what it imports late or downwards: the reason}."
    out = defaultdict(dict)
    for line in section("Imports the order does not explain").splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cols) == 3 and cols[0] != "module" and not set(cols[0]) <= set("-: "):
            mods = re.findall(r"`([\w.]+)`", cols[0])
            assert mods and cols[2], f"an exception without a module or a reason: {line}"
            for mod in mods:
                for target in re.findall(r"`([\w.*]+)`", cols[1]): out[mod][target] = cols[2]
    return out


def imports(name: str, path: Path):
    "Each import of module `name`: (imported module, line, at the module's top level?)."
    tree = ast.parse(path.read_text(), str(path))
    top = set()
    for node in tree.body:  # the top level, with module-level if/try blocks
        for sub in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]: top.add(id(sub))
    pkg = ["mtssl_nb", *name.split(".")][:-1] if name else ["mtssl_nb"]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names: yield a.name, node.lineno, id(node) in top
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level: base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
            for a in node.names:  # `from mtssl_nb.eval import core` imports the module mtssl_nb.eval.core
                yield (f"{base}.{a.name}" if f"{base}.{a.name}".removeprefix("mtssl_nb.") in MODULES else base), node.lineno, id(node) in top


MODULES = package_modules()


def own(target: str) -> str | None:
    "The package module an import names ('mtssl_nb.tasks.core' -> 'tasks.core'), or None for another package."
    if target != "mtssl_nb" and not target.startswith("mtssl_nb."): return None
    name = target.removeprefix("mtssl_nb").removeprefix(".")
    while name not in MODULES: name = name.rpartition(".")[0]
    return name


def third_party(target: str) -> bool:
    top = target.split(".")[0]
    return top != "mtssl_nb" and top not in sys.stdlib_module_names and top != "__future__"


def test_every_module_is_on_the_map_once():
    order = map_order()
    assert len(order) == len(set(order)), [m for m in order if order.count(m) > 1]
    assert set(order) == set(MODULES) - {""}, {"not on the map": sorted(set(MODULES) - {""} - set(order)),
                                               "on the map, not in the package": sorted(set(order) - set(MODULES))}


def test_imports_follow_the_map():
    "Every import of a package module points up the map (or is a named exception); third-party imports are at the top (or named)."
    rank = {m: i for i, m in enumerate(map_order())} | {"": -1}  # mtssl_nb itself: its version
    allowed, used, wrong = exceptions(), set(), []
    for name, path in MODULES.items():
        if not name: continue
        for target, line, at_top in imports(name, path):
            where = f"mtssl_nb/{path.relative_to(PKG)}:{line}"
            mod = own(target)
            if mod is not None:
                if mod == name or rank[mod] < rank[name]: continue
                if mod in allowed.get(name, {}): used.add((name, mod)); continue
                wrong.append(f"{where}: {name} imports {mod}, which the map lists below it")
            elif third_party(target) and not at_top:
                top = target.split(".")[0]
                key = top if top in allowed.get(name, {}) else "*" if "*" in allowed.get(name, {}) else None
                if key is not None: used.add((name, key)); continue
                wrong.append(f"{where}: {name} imports {top} inside a function; import it at the top, or name the reason in the map")
    assert not wrong, "\n".join(wrong)
    stale = [f"{m}: {t}" for m, ts in allowed.items() for t in ts if (m, t) not in used]
    assert not stale, f"the map names exceptions the code no longer has: {stale}"


def test_no_import_circle():
    "No chain of imports, late ones included, leads from a module back to itself."
    graph = {name: {own(t) for t, _, _ in imports(name, path) if own(t) not in (None, "", name)} for name, path in MODULES.items() if name}
    state, path = {}, []

    def visit(m):
        state[m] = "open"; path.append(m)
        for n in sorted(graph[m]):
            assert state.get(n) != "open", f"import circle: {' -> '.join(path[path.index(n):] + [n])}"
            if n not in state: visit(n)
        state[m] = "done"; path.pop()

    for m in sorted(graph):
        if m not in state: visit(m)

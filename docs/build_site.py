"""Build the documentation site from the notebooks: `make docs` (or `python docs/build_site.py`), then open _site/index.html.

Sphinx with MyST-NB renders one page per notebook (the library's in nbs/, the walkthroughs in nbs/tutorials/), the
README as the front page, docs/architecture.md and the course outline (assignments/README.md), with Sphinx's search.
Quarto, which `nbdev-docs` needs, has no wheel on the package registries; Sphinx and MyST-NB do, and MyST-NB executes
notebooks through jupyter-cache, so a rebuild re-runs only the notebooks that changed.

This script turns the repository into Sphinx's source folder `_site_src/` first, doing what nbdev's own processing
does before Quarto renders:
- a `#| hide` cell runs but is not shown; `#| default_exp` cells are not shown; `#| slow` and `#| gpu` cells are shown
  but not run (as in `nbdev-test`); the `#| ...` lines themselves are dropped from the code shown;
- after each `#| export` cell, every public name it defines (the module's `__all__`) gets its reference: nbdev's
  `show_doc` of it, the signature with each parameter's documentation (docments);
- `api.md` gathers those references for every module, in one page.
The notebooks keep their places (`_site_src/nbs/...`, with the repository's other folders linked beside them), so the
relative paths their cells read (`../data_samples`, `../instructor/solutions`) hold while they run. They run with
IN_TEST set (the walkthroughs at their quick settings) and MTSSL_WIDGETS=0 (explorers as static figures).
"""
from __future__ import annotations

import argparse, ast, importlib, inspect, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPO = "https://github.com/mtssl/mtssl_nb"
DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)(.*)$")
PAGES = {"README.md": "index.md", "docs/architecture.md": "architecture.md", "assignments/README.md": "course.md"}


def directives(src: str) -> dict[str, str]:
    "The cell's `#| name args` lines at its top, as {name: args}."
    out = {}
    for line in src.splitlines():
        if not line.strip(): continue
        m = DIRECTIVE.match(line)
        if not m: break
        out[m[1]] = m[2].strip()
    return out


def strip_directives(src: str) -> str:
    lines = src.splitlines()
    while lines and (DIRECTIVE.match(lines[0]) or not lines[0].strip()): lines.pop(0)
    return "\n".join(lines)


def defined_names(src: str) -> list[str]:
    "Top-level names a code cell defines (functions, classes, assignments), in order."
    try: tree = ast.parse(src)
    except SyntaxError: return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(names))


def reference(obj, name: str, module: str) -> str:
    "nbdev's `show_doc` of `obj` as Markdown, with a source link to the exported module's line."
    from nbdev.showdoc import BasicMarkdownRenderer, show_doc
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or callable(obj)):  # a constant: its value, shortened
        r = repr(obj)
        return f"### {name}\n\n```text\n{name} = {r if len(r) < 300 else r[:300] + ' ...'}\n```"
    md = show_doc(obj, name=name, renderer=BasicMarkdownRenderer)._repr_markdown_()
    md = re.sub(r"^\[source\]\(.*?\)\{.*?\}\s*$", "", md, flags=re.M)  # Quarto's link attributes: ours below, with the line
    try:
        file = Path(inspect.getsourcefile(obj)).resolve().relative_to(ROOT)
        line = inspect.getsourcelines(obj)[1]
        md = md.replace(f"### {name}", f"### {name}\n\n<a class='source-link' href='{REPO}/blob/main/{file.as_posix()}#L{line}'>source</a>", 1)
    except (TypeError, OSError, ValueError): pass  # constants and aliases have no source of their own
    return re.sub(r"^---\s*$", "", md, flags=re.M).strip()  # nbdev's rules between entries: the headings separate them here


def process_notebook(src: Path, dst: Path) -> list[tuple[str, str, object]]:
    "Write `src` as Sphinx will render it; returns the (module, name, object) of every reference it added."
    nb = json.loads(src.read_text())
    module, cells, refs = None, [], []
    for c in nb["cells"]:
        if c["cell_type"] == "code" and (d := directives("".join(c["source"]))).get("default_exp"):
            module = "mtssl_nb." + d["default_exp"]
    mod = importlib.import_module(module) if module else None
    public = set(getattr(mod, "__all__", ()))
    for c in nb["cells"]:
        cells.append(c)
        if c["cell_type"] != "code": continue
        src_text = "".join(c["source"])
        d = directives(src_text)
        c["outputs"], c["execution_count"] = [], None
        tags = c.setdefault("metadata", {}).setdefault("tags", [])
        if "default_exp" in d or "hide" in d: tags.append("remove-cell")
        if "slow" in d or "gpu" in d: tags.append("skip-execution")
        if d: c["source"] = strip_directives(src_text)
        if ("export" in d or "exports" in d) and mod is not None:
            for name in defined_names(c["source"]):
                if name in public:
                    refs.append((module, name, getattr(mod, name)))
                    cells.append(dict(cell_type="markdown", id=f"ref-{len(refs)}", metadata={}, source=reference(getattr(mod, name), name, module)))
    nb["cells"] = cells
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(json.dumps(nb, indent=1, ensure_ascii=False))
    return refs


def page_links(text: str, here: str) -> str:
    "Links in a Markdown page to notebooks and pages of the repository, pointed at their pages on the site."
    def fix(m):
        label, target = m[1], m[2]
        if re.match(r"^[a-z]+://|^#|^mailto:", target): return m[0]
        path, _, anchor = target.partition("#")
        full = (ROOT / Path(here).parent / path).resolve()
        try: rel = full.relative_to(ROOT).as_posix()
        except ValueError: return m[0]
        if rel in PAGES: return f"[{label}]({PAGES[rel]}{'#' + anchor if anchor else ''})"
        if rel.endswith(".ipynb") and rel.startswith("nbs/"): return f"[{label}]({rel}{'#' + anchor if anchor else ''})"
        if full.is_file() and full.suffix.lower() in (".png", ".jpg", ".svg", ".gif"): return f"[{label}]({rel})"
        return f"[{label}]({REPO}/blob/main/{rel})"  # a file the site does not render: its source on GitHub
    return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", fix, text)


def build_source(out: Path) -> dict:
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    for p in ROOT.iterdir():  # the repository beside the notebooks, for the paths their cells read
        if p.name not in ("nbs", ".git", "_site", "_site_src", "_site_cache", ".venv") and not p.name.startswith("."):
            (out / p.name).symlink_to(p)
    lib = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
    walk = sorted((ROOT / "nbs" / "tutorials").glob("[0-9]*.ipynb"))
    refs = []
    for p in [*lib, *walk]: refs += process_notebook(p, out / p.relative_to(ROOT))
    for src, dst in PAGES.items():
        text = page_links((ROOT / src).read_text(), src)
        if dst == "index.md":
            text += ("\n\n```{toctree}\n:hidden:\n:maxdepth: 1\n\nwalkthroughs\nlibrary\napi\narchitecture\ncourse\n```\n")
        (out / dst).write_text(text)
    title = lambda p: next((l.lstrip("# ").strip() for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "markdown"
                            for l in "".join(c["source"]).splitlines() if l.startswith("# ")), p.stem)
    (out / "walkthroughs.md").write_text("# Walkthroughs\n\nThe course's notebooks, run at their quick settings.\n\n```{toctree}\n:maxdepth: 1\n\n"
                                         + "\n".join(p.relative_to(ROOT).with_suffix("").as_posix() for p in walk) + "\n```\n")
    (out / "library.md").write_text("# The library, notebook by notebook\n\nEach module of `mtssl_nb` with the notebook that defines it: "
                                    "prose, code, tests and figures.\n\n```{toctree}\n:maxdepth: 1\n\n"
                                    + "\n".join(p.relative_to(ROOT).with_suffix("").as_posix() for p in lib) + "\n```\n")
    api = ["# API reference\n", "Every public function and class of `mtssl_nb`, module by module: its signature with each parameter's "
           "documentation. Each module's notebook shows the same entries beside the code and tests that define them.\n"]
    by_module: dict[str, list] = {}
    for module, name, obj in refs: by_module.setdefault(module, []).append((name, obj))
    for module in sorted(by_module):
        api.append(f"\n## {module}\n")
        api += [reference(obj, name, module) + "\n" for name, obj in by_module[module]]
    (out / "api.md").write_text("\n".join(api))
    return dict(notebooks=len(lib) + len(walk), references=len(refs))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "_site"), help="the site's folder (default: _site)")
    ap.add_argument("--execute", default="cache", choices=["cache", "force", "off"],
                    help="cache (default): run the notebooks that changed since the last build; force: all; off: none (pages without outputs)")
    ap.add_argument("--execute-only", nargs="*", default=None, metavar="NOTEBOOK",
                    help="run only these notebooks (names without .ipynb); the other pages show their code without outputs")
    ap.add_argument("--only", nargs="*", default=None, metavar="NOTEBOOK", help="build only these notebooks' pages (names without .ipynb); for a quick look")
    a = ap.parse_args(argv)
    src = ROOT / "_site_src"
    stats = build_source(src)
    print(f"site sources in {src}: {stats['notebooks']} notebooks, {stats['references']} API references", flush=True)
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernels draw inline, as in JupyterLab
    env.update(MTSSL_DOCS_EXECUTE=a.execute, IN_TEST="1", MTSSL_WIDGETS="0")
    if a.only is not None: env["MTSSL_DOCS_ONLY"] = ",".join(a.only)
    if a.execute_only is not None: env["MTSSL_DOCS_EXECUTE_ONLY"] = ",".join(a.execute_only) or "-"  # none named: none run
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "docs" / "site"), "-q", "-W", "--keep-going", str(src), a.out]
    r = subprocess.run(cmd, env=env)
    if r.returncode == 0: print(f"site written to {a.out}/index.html (publish that folder: see the README)")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())

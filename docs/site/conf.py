# Sphinx settings of the documentation site; docs/build_site.py writes the sources (_site_src/) and runs Sphinx with these.
import os
from pathlib import Path

import mtssl_nb

project = "mtssl_nb"
author = "mtssl_nb developers"
copyright = "2026, mtssl_nb developers"
release = version = mtssl_nb.__version__
extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "attrs_inline"]
myst_heading_anchors = 3  # README links to its own sections (#using-it) resolve
suppress_warnings = ["myst.header"]  # the notebooks' headings skip levels (a ### under a #) where the prose reads better so

# every Markdown page and notebook of the site, nothing else of the repository linked beside them (docs/build_site.py)
only = [n for n in os.environ.get("MTSSL_DOCS_ONLY", "").split(",") if n]
include_patterns = ["index.md", "walkthroughs.md", "library.md", "api.md", "architecture.md", "course.md"]
include_patterns += [f"nbs/{d}{n}.ipynb" for n in only for d in ("", "tutorials/")] if only else ["nbs/*.ipynb", "nbs/tutorials/*.ipynb"]
exclude_patterns = ["**/.ipynb_checkpoints"]
if only: suppress_warnings.append("toc.not_readable")  # a partial build: the toctrees name pages it leaves out

# execution: jupyter-cache under _site_cache/, so a rebuild runs only the notebooks that changed; an error fails the build
nb_execution_mode = os.environ.get("MTSSL_DOCS_EXECUTE", "cache")
# run only these notebooks (names without .ipynb), the others shown with their code and no outputs: the browser test's build
run_only = [n for n in os.environ.get("MTSSL_DOCS_EXECUTE_ONLY", "").split(",") if n]
if run_only:
    _nbs = Path(__file__).resolve().parents[2] / "nbs"
    nb_execution_excludepatterns = ["*" + p.relative_to(_nbs.parent).as_posix() for p in [*_nbs.glob("*.ipynb"), *_nbs.glob("tutorials/*.ipynb")]
                                    if p.stem not in run_only]
nb_execution_cache_path = str(Path(__file__).resolve().parents[2] / "_site_cache")
nb_execution_in_temp = False  # each notebook runs in its own folder, where its relative paths point
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_merge_streams = True

html_theme = "pydata_sphinx_theme"
html_title = "mtssl_nb"
html_theme_options = {
    "github_url": "https://github.com/mtssl/mtssl_nb",
    "navigation_depth": 2,
    "show_toc_level": 2,
    "navbar_align": "left",
}
html_static_path = []
html_copy_source = False
html_use_index = False  # the general index would be empty: the API entries are headings (show_doc), not Sphinx objects
html_show_sourcelink = False

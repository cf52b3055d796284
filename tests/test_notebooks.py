"""Run every notebook in nbs/ through nbdev's test runner, one pytest test each.

Cells flagged with a `tst_flags` entry from pyproject.toml (`#| slow`, `#| gpu`) are skipped unless
`--nb-flags` names them, exactly as `nbdev-test --flags` does.
"""
import sys
from pathlib import Path

import pytest
import nbdev.test as nbt  # the module, not `test_nb` itself, or pytest would collect it
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parents[1]
CFG = get_config(ROOT)
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
                   if not p.name.startswith("_") and ".ipynb_checkpoints" not in p.parts)
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from lab import WALKTHROUGHS, WIDGET_NOTEBOOKS, browser_runs  # noqa: E402

# each notebook runs once: those the browser suite drives in a real JupyterLab (every cell, IN_TEST set, errors fail the
# test there) run there, and here only when the browser suite cannot run in this session
IN_BROWSER = {ROOT / p for p in (*WIDGET_NOTEBOOKS, *WALKTHROUGHS)} if browser_runs() else set()
# the walkthroughs' run of record is tests/test_course.py: each in a fresh kernel without mtssl_nb pre-installed or ipywidgets
IN_COURSE = set((ROOT / "nbs" / "tutorials").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.relative_to(ROOT / "nbs").as_posix() for p in NOTEBOOKS])
def test_notebook(nb, request):
    if nb in IN_BROWSER: pytest.skip("runs in the browser suite (tests/browser/test_widgets.py), with every cell checked there")
    if nb in IN_COURSE: pytest.skip("runs in tests/test_course.py, in a fresh kernel without mtssl_nb pre-installed or ipywidgets")
    force = request.config.getoption("--nb-flags").split()
    skip = [f for f in CFG.tst_flags.split() if f not in force]
    ok, secs = nbt.test_nb(nb, skip_flags=skip, force_flags=force, basepath=ROOT)
    assert ok, f"{nb.name} failed (its traceback is printed above)"


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS

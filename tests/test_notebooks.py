"""Run every notebook in nbs/ through nbdev's test runner, one pytest test each.

Cells flagged with a `tst_flags` entry from pyproject.toml (`#| slow`, `#| gpu`) are skipped unless
`--nb-flags` names them, exactly as `nbdev-test --flags` does.
"""
from pathlib import Path

import pytest
import nbdev.test as nbt  # the module, not `test_nb` itself, or pytest would collect it
from nbdev.config import get_config

ROOT = Path(__file__).resolve().parents[1]
CFG = get_config(ROOT)
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
                   if not p.name.startswith("_") and ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.relative_to(ROOT / "nbs").as_posix() for p in NOTEBOOKS])
def test_notebook(nb, request):
    force = request.config.getoption("--nb-flags").split()
    skip = [f for f in CFG.tst_flags.split() if f not in force]
    ok, secs = nbt.test_nb(nb, skip_flags=skip, force_flags=force, basepath=ROOT)
    assert ok, f"{nb.name} failed (its traceback is printed above)"


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 4, NOTEBOOKS

"""Notebooks are the source: `nbdev-export` and `nbdev-clean` must leave the committed files unchanged.

Both run on a copy of the project in a temporary folder, so the check never rewrites a working tree.
"""
import json, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _snapshot(root):
    files = [*root.joinpath("nbs").rglob("*.ipynb"), *root.joinpath("mtssl_nb").rglob("*.py")]
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files if "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}


def _copy(tmp_path):
    dst = tmp_path / "proj"
    for name in ("nbs", "mtssl_nb"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dst / name)
    return dst


def _changed(before, after):
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@pytest.mark.parametrize("cmd, fix", [("nbdev-export", "run nbdev-export and commit the modules with their notebooks"),
                                      ("nbdev-clean", "run nbdev-clean and commit")])
def test_command_changes_nothing(cmd, fix, tmp_path):
    proj = _copy(tmp_path)
    before = _snapshot(proj)
    subprocess.run([BIN / cmd], cwd=proj, check=True, capture_output=True)
    changed = _changed(before, _snapshot(proj))
    assert not changed, f"{cmd} changes {changed}: {fix}"


def test_no_stored_outputs_or_widget_state():
    for nb in ROOT.joinpath("nbs").rglob("*.ipynb"):
        d = json.loads(nb.read_text())
        assert "widgets" not in d.get("metadata", {}), f"{nb} stores widget state in its metadata"
        with_out = [i for i, c in enumerate(d["cells"]) if c.get("outputs")]
        assert not with_out, f"{nb} stores outputs in cells {with_out}: run nbdev-clean"

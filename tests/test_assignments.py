"""The course assignments: every reference solution scores full marks and runs without an error; every student
template scores zero without crashing the grader and is what `make_template` makes of its solution; a wrong answer
is told what differs; the pytest front door works."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtssl_nb.grade import ASSIGNMENTS, grade, make_template

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "assignments" / "solutions").glob("*.ipynb"))


def test_four_assignments():
    assert len(SOLUTIONS) >= 4 and len(ASSIGNMENTS) >= 4, (SOLUTIONS, list(ASSIGNMENTS))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_full_marks(solution):
    r = grade(solution)
    assert r.total == r.max_total > 0, r.table()
    assert not r.cell_errors, r.table()


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_template_scores_zero(solution, tmp_path):
    template = ROOT / "assignments" / solution.name
    fresh = make_template(solution, tmp_path / solution.name)
    assert json.loads(template.read_text()) == json.loads(fresh.read_text()), \
        f"{template} is not the template of {solution}: run `mtssl grade --make-templates`"
    assert "BEGIN SOLUTION" not in template.read_text()
    r = grade(template)
    assert r.total == 0 and r.max_total > 0, r.table()
    assert all("not answered yet" in s.message for s in r.scores), r.table()


def _edited(solution: Path, tmp_path: Path, old: str, new: str) -> Path:
    nb = json.loads(solution.read_text())
    hits = 0
    for c in nb["cells"]:
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        if old in src: c["source"], hits = src.replace(old, new), hits + 1
    assert hits, f"{old!r} not found in {solution}"
    out = tmp_path / solution.name
    out.write_text(json.dumps(nb))
    return out


def test_wrong_answers_are_told_what_differs(tmp_path):
    sol = ROOT / "assignments" / "solutions"
    r = grade(_edited(sol / "01_relpos_labels.ipynb", tmp_path, "(r, 2 - c)", "(2 - r, c)"))  # a vertical mirror
    by = {s.question: s for s in r.scores}
    assert by["Q4 mirror_label"].points == 0 and "mirror_label(torch.arange(8))" in by["Q4 mirror_label"].message
    assert "entries differ" in by["Q4 mirror_label"].message
    assert r.total == r.max_total - 1, r.table()  # the other questions keep their points
    r = grade(_edited(sol / "03_triplet_loss.ipynb", tmp_path, "amin(1, keepdim=True)", "amax(1, keepdim=True)"))  # hardest = farthest
    by = {s.question: s for s in r.scores}
    assert by["Q3 triplet_loss_hard"].points == 0 and "differs by up to" in by["Q3 triplet_loss_hard"].message
    assert by["Q4 triplet_loss_semihard"].points == 2  # untouched
    r = grade(_edited(sol / "02_soft_encoding.ipynb", tmp_path, "    p = torch.softmax(logits.float() / T, dim=1)  # (B, Q, H, W)\n",
                      "    from mtssl_nb.color import annealed_mean\n    return annealed_mean(logits, bins, T)\n"))
    assert "uses annealed_mean" in {s.question: s for s in r.scores}["Q3 annealed_mean_ab"].message


def test_pytest_front_door(tmp_path):
    env = {**os.environ, "IN_TEST": "1", "MPLBACKEND": "Agg"}
    ok = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(ROOT / "assignments" / "grade.py"),
                         "--notebook", str(ROOT / "assignments" / "solutions" / "03_triplet_loss.ipynb")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0 and "4 passed" in ok.stdout and "total                     7/7" in ok.stdout, ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(ROOT / "assignments" / "grade.py"),
                          "--notebook", str(ROOT / "assignments" / "03_triplet_loss.ipynb")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "4 failed" in bad.stdout and "not answered yet" in bad.stdout, bad.stdout + bad.stderr

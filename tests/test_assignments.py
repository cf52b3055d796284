"""The course assignments through the grader's process boundary: every reference solution scores full marks with the
hidden checks, every template zero and is what `make_template` makes of its solution; wrong answers are told what
differs; notebooks that try to talk the grader into points (replacing its checks, patching the library, torch or
builtins, writing the report, running away, eating memory, exiting) score what their honest answers score; twenty
notebooks are graded to a CSV and Gradescope's results.json in one command; the pytest front door works."""
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtssl_nb.grade import ASSIGNMENTS, make_template

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "instructor" / "solutions").glob("*.ipynb"))
CHECKS = ROOT / "instructor" / "mtssl_instructor" / "checks.py"
FULL = {"relpos_labels": 6, "soft_encoding": 7, "triplet_loss": 7, "rotation_task": 8}


def test_four_assignments_and_their_hidden_checks():
    assert len(SOLUTIONS) >= 4 and len(ASSIGNMENTS) >= 4, (SOLUTIONS, list(ASSIGNMENTS))
    assert not (ROOT / "assignments" / "solutions").exists()  # the student-facing folder holds templates only
    import mtssl_nb
    pkg = Path(mtssl_nb.__file__).parent
    assert not list(pkg.rglob("*.ipynb")) and not (pkg / "solutions").exists()  # no solutions ship with the package
    assert "_check_extent(ns, [(24, 12, 3)" not in (pkg / "grade.py").read_text()  # nor the hidden cases


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_template_is_made_from_its_solution(solution, tmp_path):
    template = ROOT / "assignments" / solution.name
    fresh = make_template(solution, tmp_path / solution.name)
    assert json.loads(template.read_text()) == json.loads(fresh.read_text()), \
        f"{template} is not the template of {solution}: run `mtssl grade --make-templates`"
    assert "BEGIN SOLUTION" not in template.read_text()


def _edit(src: Path, out: Path, old: str = None, new: str = None, extra: list[str] = (), at: int = None) -> Path:
    "A copy of the notebook `src` with `old` replaced by `new` and the code cells `extra` inserted at `at` (default: the end)."
    nb = json.loads(src.read_text())
    if old is not None:
        hits = 0
        for c in nb["cells"]:
            s = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            if old in s: c["source"], hits = s.replace(old, new), hits + 1
        assert hits, f"{old!r} not found in {src}"
    cells = [{"cell_type": "code", "metadata": {}, "source": e, "outputs": [], "execution_count": None} for e in extra]
    at = len(nb["cells"]) if at is None else at
    nb["cells"][at:at] = cells
    out.write_text(json.dumps(nb))
    return out


def _fake_results(path: Path) -> str:
    return json.dumps({"score": 1000, "tests": [{"name": "everything", "score": 1000, "max_score": 6}]})


def _cohort(d: Path, results: Path, grades: Path) -> dict[str, int]:
    "Twenty notebooks in `d`, each with the score an honest grader gives it."
    sol = {p.stem.split("_", 1)[1]: p for p in SOLUTIONS}  # relpos_labels, soft_encoding, triplet_loss, rotation_task
    tpl = {k: ROOT / "assignments" / p.name for k, p in sol.items()}
    want = {}
    for k in sol:
        want[_edit(sol[k], d / f"solution_{k}.ipynb").name] = FULL[k]
        want[_edit(tpl[k], d / f"template_{k}.ipynb").name] = 0
    t1 = tpl["triplet_loss"]  # the quickest template to run: the cheats below are added to it
    # the cheat that started it: every check replaced by one that accepts anything
    want[_edit(t1, d / "cheat_checks.ipynb", extra=["import mtssl_nb.grade as g\nfor q in g.ASSIGNMENTS['triplet_loss']:\n"
                                                    "    q.check = lambda ns: None\n    q.hidden = []"]).name] = 0
    # the library the checks compare with, patched to agree with a wrong answer
    want[_edit(t1, d / "cheat_library.ipynb", extra=["import torch\nimport mtssl_nb.tasks.exemplar as E\n"
                                                     "def triplet_loss_all(z, margin=0.5): return torch.zeros((), requires_grad=True) * z.sum()\n"
                                                     "E.triplet_loss = lambda z, margin, mining: (torch.zeros((), requires_grad=True) * z.sum(), {})\n"
                                                     "torch.cdist = lambda a, b: unit_distances(a)"]).name] = 0
    # torch's comparisons and random inputs patched so that anything matches
    want[_edit(t1, d / "cheat_torch.ipynb", extra=["import torch\ntorch.equal = lambda *a, **k: True\ntorch.allclose = lambda *a, **k: True\n"
                                                   "torch.Tensor.__ne__ = lambda a, b: torch.zeros((), dtype=torch.bool)\n"
                                                   "torch.Generator.manual_seed = lambda self, s: self\n"
                                                   "def unit_distances(x): return x @ x.T"]).name] = 0
    # builtins patched
    want[_edit(t1, d / "cheat_builtins.ipynb", extra=["import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.tuple = lambda *a: ()\n"
                                                      "builtins.AssertionError = type('Never', (BaseException,), {})\n"
                                                      "def unit_distances(x): return x"]).name] = 0
    # the report files written by the notebook, once and then again and again from a process of its own
    fake = _fake_results(results)
    rj = str(results / "cheat_report.results.json")
    script = f"import time\nwhile True:\n    open({str(grades)!r}, 'w').write('notebook,total\\nall,1000\\n')\n    open({rj!r}, 'w').write({fake!r})\n    time.sleep(0.3)\n"
    writer = f"import subprocess, sys\nopen({rj!r}, 'w').write({fake!r})\nopen('w.py', 'w').write({script!r})\nsubprocess.Popen([sys.executable, 'w.py'], start_new_session=True)"
    want[_edit(t1, d / "cheat_report.ipynb", extra=[writer]).name] = 0
    s3 = sol["triplet_loss"]
    # a cell that runs away and ignores the interrupt: it costs only itself
    want[_edit(s3, d / "runaway.ipynb", extra=["import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"], at=3).name] = 7
    # memory: one allocation past the limit, then the limit raised (refused, or the watchdog ends the kernel)
    want[_edit(s3, d / "memory.ipynb", extra=["import torch\nbig = torch.ones(2**31)",
                                              "import resource\nresource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY,) * 2)\n"
                                              "chunks = [torch.ones(2**27) for _ in range(40)]"], at=3).name] = 7
    # exits: the kernel ends, is restarted, the cells before replayed
    want[_edit(s3, d / "exits.ipynb", extra=["import sys\nsys.exit(3)", "exit()", "import os\nos._exit(0)"], at=3).name] = 7
    # the visible case hard-coded: the hidden checks catch it
    want[_edit(sol["relpos_labels"], d / "hardcoded.ipynb", "    return 3 * patch + 2 * gap + 2 * jitter", "    return 398").name] = 5
    # wrong answers, told what differs
    want[_edit(sol["relpos_labels"], d / "wrong_mirror.ipynb", "(r, 2 - c)", "(2 - r, c)").name] = 5  # a vertical mirror
    want[_edit(s3, d / "wrong_hard.ipynb", "amin(1, keepdim=True)", "amax(1, keepdim=True)").name] = 5  # hardest = farthest
    want[_edit(sol["soft_encoding"], d / "library_call.ipynb", "    p = torch.softmax(logits.float() / T, dim=1)  # (B, Q, H, W)\n",
               "    from mtssl_nb.color import annealed_mean\n    return annealed_mean(logits, bins, T)\n").name] = 5
    assert len(want) == 20
    return want


def test_twenty_notebooks_in_one_command_cheats_score_as_honest_answers(tmp_path):
    d, results, grades = tmp_path / "in", tmp_path / "gradescope", tmp_path / "grades.csv"
    d.mkdir(); results.mkdir()
    want = _cohort(d, results, grades)
    cmd = [str(Path(sys.executable).parent / "mtssl"), "grade", *sorted(str(p) for p in d.glob("*.ipynb")), "--checks", str(CHECKS),
           "--jobs", "2", "--cell-timeout", "20", "--memory-mb", "2048", "--csv", str(grades), "--results-json", str(results), "--json", str(tmp_path / "all.json")]
    t = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    time.sleep(1)  # a writer the notebook left behind would overwrite the files by now
    rows = {Path(r["notebook"]).name: r for r in csv.DictReader(grades.open())}
    got = {n: float(r["total"]) for n, r in rows.items()}
    assert got == {n: float(v) for n, v in want.items()}, (got, run.stdout[-6000:])
    reports = {Path(r["notebook"]).name: r for r in json.loads((tmp_path / "all.json").read_text())}
    msg = lambda nb, q: next(s["message"] or s["hidden_message"] for s in reports[nb]["scores"] if s["question"] == q)
    assert "mirror_label(torch.arange(8))" in msg("wrong_mirror.ipynb", "Q4 mirror_label")
    assert "differs by up to" in msg("wrong_hard.ipynb", "Q3 triplet_loss_hard")
    assert "uses annealed_mean" in msg("library_call.ipynb", "Q3 annealed_mean_ab")
    assert "grid_extent(patch=24, gap=12, jitter=3) gave 398" in msg("hardcoded.ipynb", "Q1 grid_extent")  # a hidden case
    assert all("not answered yet" in s["message"] for n in want if n.startswith("template_") for s in reports[n]["scores"])
    assert any("did not stop when interrupted" in e for e in reports["runaway.ipynb"]["cell_errors"])
    assert any("can't allocate memory" in e or "MemoryError" in e for e in reports["memory.ipynb"]["cell_errors"])
    assert any("the kernel ended" in e for e in reports["exits.ipynb"]["cell_errors"]), reports["exits.ipynb"]
    assert all(s["hidden"] in ("passed", "not run") and s["points"] == s["max_points"] for n in want if n.startswith("solution_")
               for s in reports[n]["scores"])
    assert all(not reports[n]["cell_errors"] for n in want if n.startswith("solution_"))
    # Gradescope's results.json, one per notebook, with its documented fields only
    for n, total in want.items():
        g = json.loads((results / f"{Path(n).stem}.results.json").read_text())
        _valid_gradescope(g)
        assert g["score"] == total and sum(t["score"] for t in g["tests"]) == total, (n, g)
    hc = json.loads((results / "hardcoded.results.json").read_text())["tests"]
    assert [t["visibility"] for t in hc if t["name"].startswith("Q1")] == ["visible", "after_published"]
    assert "24" not in hc[0]["output"]  # the hidden case shows only when grades are published
    print(f"20 notebooks graded in {time.time() - t:.0f} s")


_TOP = {"score": (int, float), "execution_time": (int, float), "output": str, "output_format": str, "test_output_format": str,
        "test_name_format": str, "visibility": str, "stdout_visibility": str, "extra_data": dict, "tests": list, "leaderboard": list}
_TEST = {"score": (int, float), "max_score": (int, float), "status": str, "name": str, "name_format": str, "number": str, "output": str,
         "output_format": str, "tags": list, "visibility": str, "extra_data": dict}
_VIS = {"hidden", "after_due_date", "after_published", "visible"}


def _valid_gradescope(g: dict):
    "The fields and types of Gradescope's autograder results specification (results.json)."
    assert set(g) <= set(_TOP) and all(isinstance(g[k], _TOP[k]) for k in g), g
    assert "score" in g or all("score" in t for t in g["tests"])
    assert g.get("visibility", "visible") in _VIS and g.get("stdout_visibility", "visible") in _VIS
    for t in g["tests"]:
        assert set(t) <= set(_TEST) and all(isinstance(t[k], _TEST[k]) for k in t), t
        assert t.get("visibility", "visible") in _VIS and t.get("status", "passed") in ("passed", "failed")
        assert 0 <= t["score"] <= t["max_score"]


def test_pytest_front_door(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(ROOT / "assignments" / "grade.py"), "--checks", str(CHECKS)]
    ok = subprocess.run(base + ["--notebook", str(ROOT / "instructor" / "solutions" / "03_triplet_loss.ipynb")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0 and "4 passed" in ok.stdout and "total                     7/7" in ok.stdout, ok.stdout + ok.stderr
    bad = subprocess.run(base + ["--notebook", str(ROOT / "assignments" / "03_triplet_loss.ipynb")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "4 failed" in bad.stdout and "not answered yet" in bad.stdout, bad.stdout + bad.stderr

"""The course assignments through the grader's process boundary: every reference solution scores full marks with the
hidden checks, every template zero and is what `make_template` makes of its solution; wrong answers are told what
differs; notebooks that try to talk the grader into points (replacing its checks, patching the library, torch or
builtins, writing the report, running away, eating memory, exiting) score what their honest answers score; twenty
notebooks are graded to a CSV and Gradescope's results.json in one command; the pytest front door works."""
import csv
import json
import os
import shutil
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


_FIND_SOLUTIONS = r'''
import os, glob, mtssl_nb
from pathlib import Path
roots = {Path(mtssl_nb.__file__).resolve().parents[1], Path.cwd()}
for p in glob.glob("/proc/[0-9]*"):  # the grader's cwd and command line, through /proc
    try: roots.add(Path(os.readlink(p + "/cwd")))
    except OSError: pass
    try: roots |= {Path(a).parent for a in open(p + "/cmdline").read().split("\0") if a.endswith(".ipynb")}
    except OSError: pass
found = [str(q / "instructor/solutions/03_triplet_loss.ipynb") for r in roots for q in [r, *r.parents] if (q / "instructor/solutions/03_triplet_loss.ipynb").is_file()]
if found:
    import json
    for c in json.load(open(found[0]))["cells"]:
        if c["cell_type"] == "code": exec("".join(c["source"]))
'''

_CLASSMATES = r'''
import glob, json
for p in glob.glob("/proc/[0-9]*/cmdline"):
    try: args = open(p).read().split("\0")
    except OSError: continue
    for a in args:
        if a.endswith(".ipynb") and "classmates" not in a:
            try:
                nb = json.load(open(a)); exec("".join(nb["cells"][2]["source"]))  # their answers here
                open(a, "w").write("{}")  # and nothing left for them
            except OSError: pass
'''

_PLANT = r'''
import safetensors, mtssl_nb, os, pathlib
for f in [safetensors.__file__, mtssl_nb.__file__]:
    try: open(f, "a").write("\nimport mtssl_nb.grade as g\ng.verdict = lambda check, ns: ''\n")
    except OSError: pass
    try:
        d = pathlib.Path(f).parent / "__pycache__"; d.mkdir(exist_ok=True); (d / "grade.cpython-311.pyc").write_bytes(b"planted")
    except OSError: pass
'''


_SERVE_REFERENCE = r'''
import mtssl_nb.sandbox as S
from mtssl_nb.tasks.exemplar import triplet_loss
_orig, MINING = S.serve, {"triplet_loss_all": "all", "triplet_loss_hard": "hard", "triplet_loss_semihard": "semi-hard"}
def serve(ns, request):  # the kernel's serving code, replaced: the library's answer for each triplet question
    r = S.decode(request)
    if r.get("op") == "run" and r.get("inputs", {}).get("fn") in MINING:
        g = dict(ns); g.update(r["inputs"]); m = MINING[r["inputs"]["fn"]]
        g[r["inputs"]["fn"]] = lambda z, margin: triplet_loss(z, margin, m)[0]
        exec(compile(r["code"], "<grader>", "exec"), g)
        return S.encode({"value": g.get("out")})
    return _orig(ns, request)
S.serve = serve
'''

_PRECOMPUTED = r'''
import torch, mtssl_nb.sandbox as S
_orig = S.serve
def serve(ns, request):  # the training question answered without training: one-hot logits for the photos the grader used to fix
    r = S.decode(request)
    if r.get("op") == "run" and "trainer.history" in r.get("code", ""):
        from mtssl_nb.grade import _rotated_photos
        x, k = _rotated_photos()
        return S.encode({"value": {"acc": [1.0], "logits": torch.nn.functional.one_hot(k, 4).float() * 10}})
    return _orig(ns, request)
S.serve = serve
'''

_ALIASES = {"alias_import": "from mtssl_nb.color import annealed_mean as annealed_mean_ab",
            "tuple_lambdas": "from mtssl_nb.color import SoftEncoder\nnearest_bins, soft_encode = (lambda ab, bins, k: SoftEncoder(bins, k=k).encode(ab)[0]), "
                             "(lambda ab, bins, k=5, sigma=5.0: SoftEncoder(bins, k=k, sigma=sigma).dense(*SoftEncoder(bins, k=k, sigma=sigma).encode(ab)))",
            "hidden_by_exec": "exec(\"from mtssl_nb.color import annealed_mean\\nannealed_mean_ab = annealed_mean\")"}


def _hashes(*roots) -> dict:
    return {str(p): p.read_bytes() for r in roots for p in sorted(Path(r).rglob("*")) if p.is_file()}


def test_the_boundary_answers_what_reaches_outside_the_kernel(tmp_path):
    "Solutions, classmates, the grader's parent and installed files are out of the kernel's reach; a malformed notebook costs only itself."
    import mtssl_nb, safetensors
    d = tmp_path / "in"; d.mkdir()
    sol, tpl = SOLUTIONS[2], ROOT / "assignments" / "03_triplet_loss.ipynb"  # triplet_loss: the quickest to run
    assert sol.stem == "03_triplet_loss"
    want = {_edit(sol, d / "honest.ipynb").name: 7,
            _edit(tpl, d / "finds_solutions.ipynb", extra=[_FIND_SOLUTIONS]).name: 0,
            _edit(tpl, d / "classmates.ipynb", extra=[_CLASSMATES]).name: 0,
            _edit(tpl, d / "plants.ipynb", extra=[_PLANT]).name: 0,
            _edit(sol, d / "kills_parent.ipynb", extra=["import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.killpg(0, signal.SIGKILL)"]).name: 7}
    # the kernel's own serving code replaced, library objects under the graded names, replies made ready in advance
    want[_edit(tpl, d / "serve_reference.ipynb", extra=[_SERVE_REFERENCE]).name] = 0
    tpl2 = ROOT / "assignments" / "02_soft_encoding.ipynb"
    for name, cell in _ALIASES.items(): want[_edit(tpl2, d / f"{name}.ipynb", extra=[cell]).name] = 0
    want[_edit(SOLUTIONS[3], d / "precomputed.ipynb", extra=[_PRECOMPUTED]).name] = FULL["rotation_task"] - 3  # all but the training question
    bad = json.loads(tpl.read_text())
    last = max(i for i, c in enumerate(bad["cells"]) if c["cell_type"] == "code")
    del bad["cells"][last]["source"]  # a code cell without source: read as empty, the rest graded
    (d / "no_source.ipynb").write_text(json.dumps(bad))
    bad["cells"][last]["source"] = 5  # not text: this notebook is not graded, and says why
    (d / "malformed.ipynb").write_text(json.dumps(bad))
    want["no_source.ipynb"] = 0
    honest_before = (d / "honest.ipynb").read_bytes()
    installed = [Path(mtssl_nb.__file__).parent, Path(safetensors.__file__).parent]
    before = _hashes(*installed)
    grades = tmp_path / "grades.csv"
    cmd = [str(Path(sys.executable).parent / "mtssl"), "grade", *sorted(str(p) for p in d.glob("*.ipynb")), "--checks", str(CHECKS),
           "--jobs", "2", "--cell-timeout", "60", "--csv", str(grades), "--json", str(tmp_path / "all.json")]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "MPLBACKEND": "Agg"}, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {Path(r["notebook"]).name: r for r in csv.DictReader(grades.open())}
    assert {n: float(rows[n]["total"]) for n in want} == {n: float(v) for n, v in want.items()}, run.stdout[-4000:]
    assert {rows[n]["boundary"] for n in want} == {"bwrap"}
    assert "not graded" in rows["malformed.ipynb"]["problems"] and f"cell {last} is malformed" in rows["malformed.ipynb"]["problems"]
    assert (d / "honest.ipynb").read_bytes() == honest_before  # the classmate's file is as handed in
    assert _hashes(*installed) == before  # nothing installed was written, bytecode included
    assert "kernel in its own bubblewrap sandbox" in run.stdout
    reports = {Path(r["notebook"]).name: r for r in json.loads((tmp_path / "all.json").read_text())}
    msg = lambda nb, q: next(s["message"] or s["hidden_message"] for s in reports[nb]["scores"] if s["question"].startswith(q))
    assert "triplet_loss is the library's answer to a graded question" in msg("serve_reference.ipynb", "Q2"), reports["serve_reference.ipynb"]
    assert "annealed_mean_ab is mtssl_nb.color.annealed_mean" in msg("alias_import.ipynb", "Q3")
    assert "annealed_mean_ab is mtssl_nb.color.annealed_mean" in msg("hidden_by_exec.ipynb", "Q3")
    assert "nearest_bins uses SoftEncoder" in msg("tuple_lambdas.ipynb", "Q1")  # tuple targets are read too
    assert "rotated photos right" in msg("precomputed.ipynb", "Q3"), reports["precomputed.ipynb"]


def test_no_boundary_no_grading_of_others(tmp_path):
    "Without a sandbox `mtssl grade` refuses, saying why; --own grades a notebook of one's own and says the boundary was off."
    tpl = ROOT / "assignments" / "03_triplet_loss.ipynb"
    env = {**os.environ, "MPLBACKEND": "Agg", "MTSSL_BWRAP": ""}  # as on a machine without bubblewrap
    mtssl = str(Path(sys.executable).parent / "mtssl")
    no = subprocess.run([mtssl, "grade", str(tpl)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert no.returncode != 0 and "refusing to grade: bubblewrap is not installed" in no.stdout + no.stderr, no.stdout + no.stderr
    own = subprocess.run([mtssl, "grade", str(tpl), "--own", "--json", "r.json"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert own.returncode == 0 and "NO sandbox" in own.stdout, own.stdout + own.stderr
    assert json.loads((tmp_path / "r.json").read_text())[0]["boundary"] == "none"
    pinned = subprocess.run([mtssl, "grade", str(tpl), "--assignment", "relpos_labels", "--json", "p.json"], capture_output=True, text=True,
                            cwd=tmp_path, env={**env, "MTSSL_BWRAP": shutil.which("bwrap") or ""}, timeout=300)
    r = json.loads((tmp_path / "p.json").read_text())[0]
    assert pinned.returncode == 0 and r["assignment"] == "relpos_labels" and r["total"] == 0, pinned.stdout + pinned.stderr
    assert "answers assignment 'triplet_loss', not 'relpos_labels'" in r["scores"][0]["message"]


@pytest.mark.parametrize("n", [0, 2])
def test_gradescope_script_wants_exactly_one_notebook(n, tmp_path):
    "Gradescope's run_autograder grades the one notebook submitted; none or several get a score of 0 that says why, not a guess."
    for d in ("submission", "results"): (tmp_path / d).mkdir()
    for i in range(n): shutil.copy(ROOT / "assignments" / "01_relpos_labels.ipynb", tmp_path / "submission" / f"nb{i}.ipynb")
    env = os.environ | {"MTSSL_AUTOGRADER_ROOT": str(tmp_path), "MTSSL_ASSIGNMENT": "relpos_labels"}
    r = subprocess.run(["bash", str(ROOT / "instructor" / "gradescope" / "run_autograder")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    assert res["score"] == 0 and f"Submit exactly one notebook (.ipynb) for relpos_labels: this submission has {n}." == res["output"]

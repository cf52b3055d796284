"""The built wheel on its own: installed into a fresh virtual environment with no checkout beside it, it runs the demo,
a training preset, the grader and a walkthrough, and its metadata is what PyPI users expect.

The fresh environment gets its dependencies as hard links of this test environment's installed packages (mtssl_nb's own
editable install left out), so the test needs no network and takes seconds, not the minutes of installing PyTorch.
`pip install --no-index` of the wheel then checks that every requirement the wheel declares is met there, and `pip check`
that the whole set is consistent. What it does not show is that pip resolves those requirements from an index: that
is what `pip install mtssl_nb` does on a user's machine, and what a fresh clone's `make install` already runs in CI.
"""
import csv, email, json, os, shutil, subprocess, sys, sysconfig, zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("mtssl_nb", "mtssl_nb-", "__editable__.mtssl_nb", "__editable___mtssl_nb", "mtssl_instructor")


def sh(*cmd, cwd, env, timeout=600):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    "The wheel and sdist `python -m build` makes of the checkout."
    out = tmp_path_factory.mktemp("dist")
    sh(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, cwd=out, env=os.environ.copy())
    (wheel,), (sdist,) = out.glob("*.whl"), out.glob("*.tar.gz")
    return wheel, sdist


@pytest.fixture(scope="module")
def fresh(dist, tmp_path_factory):
    "(folder with no checkout, its environment variables, the fresh environment's bin/) with the wheel installed, extras included."
    home = tmp_path_factory.mktemp("user")
    env_dir = home / "env"
    sh(getattr(sys, "_base_executable", sys.executable), "-m", "venv", env_dir, cwd=home, env=os.environ.copy())
    ours_site = Path(sysconfig.get_paths()["purelib"])
    (new_site,) = (env_dir / "lib").glob("python*/site-packages")
    for p in ours_site.iterdir():  # every installed dependency, as hard links (same file system) or copies
        if p.name.startswith(OURS) or (new_site / p.name).exists(): continue
        if p.is_dir(): shutil.copytree(p, new_site / p.name, copy_function=os.link, symlinks=True)
        else: os.link(p, new_site / p.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "MTSSL", "IN_TEST", "MPLBACKEND"))}
    env.update(HOME=str(home), PATH=f"{env_dir / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}")
    bin_ = env_dir / "bin"
    sh(bin_ / "python", "-m", "pip", "install", "--no-index", "--quiet", "--disable-pip-version-check", f"{dist[0]}[widgets,grade]", cwd=home, env=env)
    sh(bin_ / "python", "-m", "pip", "check", cwd=home, env=env)
    return home, env, bin_


def test_metadata(dist):
    wheel, sdist = dist
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = email.message_from_bytes(z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))))
    assert meta["License-Expression"] == "Apache-2.0" and any(n.endswith("licenses/LICENSE") for n in names)
    assert {"widgets", "grade", "all", "dev"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("torch") and "extra" not in r for r in requires)  # the library itself needs torch, and no Jupyter
    assert any(r.startswith("ipywidgets") and 'extra == "widgets"' in r for r in requires)
    assert any(r.startswith("jupyter_client") and 'extra == "grade"' in r for r in requires)
    assert not any(r.startswith(("ipywidgets", "jupyter_client", "nbdev")) and "extra" not in r for r in requires)
    assert "Repository, https://github.com/mtssl/mtssl_nb" in meta.get_all("Project-URL")
    assert "Intended Audience :: Education" in meta.get_all("Classifier") and meta["Requires-Python"]
    assert meta.get_payload().lstrip().startswith("# mtssl_nb")  # the README is the project page
    assert {"mtssl_nb/configs/real.yaml", "mtssl_nb/configs/ablations/rp_col.yaml", "mtssl_nb/_modidx.py"} <= set(names)
    assert not [n for n in names if n.startswith(("nbs/", "tests/", "instructor/", "assignments/"))]


def test_installed_wheel_is_not_the_checkout(fresh):
    home, env, bin_ = fresh
    r = sh(bin_ / "python", "-c", "import mtssl_nb, mtssl_nb.cli; print(mtssl_nb.__file__)", cwd=home, env=env)
    where = Path(r.stdout.strip())
    assert where.is_relative_to(home) and not where.is_relative_to(ROOT), where
    assert sh(bin_ / "mtssl", "--version", cwd=home, env=env).stdout.startswith("mtssl_nb ")


def test_demo_writes_the_report(fresh):
    """The demo from the wheel with a reduced budget (--quick: what IN_TEST does too): samples, a trained run, the probe table,
    report.html; an earlier demo's run in the same folder is replaced, not resumed or refused."""
    home, env, bin_ = fresh
    demo = home / "demo"
    (demo / "run" / "checkpoints").mkdir(parents=True)
    (demo / "run" / "config.yaml").write_text("steps: 99\n")  # an earlier demo's run
    (demo / "run" / "checkpoints" / "step_0000099.pt").write_bytes(b"old")
    out = sh(bin_ / "mtssl", "demo", "--out", demo, "--quick", "--quiet", cwd=home, env=env)
    assert [p.name for p in (demo / "run" / "checkpoints").glob("*.pt")] == ["step_0000004.pt"]  # the smoke preset's 4 steps, afresh
    assert f"report written to {demo / 'report.html'}" in out.stdout and "| shapes | trained |" in out.stdout
    assert "| digits | random init |" in out.stdout and "(0." in out.stdout  # both leak-free probe sets, against random init, with intervals
    from PIL import Image
    with Image.open(demo / "gallery.png") as im:
        assert im.size[0] >= 1000 and np.asarray(im.convert("L")).std() > 20  # a real picture, not a blank canvas
    page = (demo / "report.html").read_text()
    imgs = [p.split("'")[0] for p in page.split("<img src='")[1:]]
    assert {"figures/task_relpos.png", "figures/task_color.png", "figures/task_exemplar.png", "figures/task_motion.png", "figures/curves.png"} <= set(imgs)
    for p in imgs:
        with Image.open(demo / p) as im:  # every figure the page shows exists and holds a picture
            assert im.size[0] > 200 and np.asarray(im.convert("L")).std() > 10, p


def test_train_preset_and_grade(fresh):
    "A preset found by name inside the wheel; the grader on a blank template (0) and a solution (every visible point), sandboxed."
    home, env, bin_ = fresh
    sh(bin_ / "mtssl", "train", "--config", "smoke", "out_dir=runs/smoke", "--quiet", cwd=home, env=env)
    assert (home / "runs/smoke/checkpoints/step_0000004.pt").is_file()
    shutil.copy(ROOT / "assignments/01_relpos_labels.ipynb", home / "blank.ipynb")
    shutil.copy(ROOT / "instructor/solutions/01_relpos_labels.ipynb", home / "solved.ipynb")
    boundary = [] if shutil.which("bwrap") else ["--boundary", "none", "--own"]  # CI installs bubblewrap (.ci/run)
    sh(bin_ / "mtssl", "grade", "blank.ipynb", "solved.ipynb", "--visible-only", "--csv", "grades.csv", *boundary, cwd=home, env=env)
    rows = {r["notebook"]: r for r in csv.DictReader((home / "grades.csv").open())}
    assert rows["blank.ipynb"]["total"] == "0" and rows["solved.ipynb"]["total"] == rows["solved.ipynb"]["max_total"] != "0", rows
    if not boundary: assert {r["boundary"] for r in rows.values()} == {"bwrap"}


def test_walkthrough_runs_from_the_wheel(fresh):
    "Walkthrough 0 top to bottom in a kernel of the fresh environment: its install cell finds mtssl_nb installed and does nothing."
    home, env, bin_ = fresh
    nb = home / "00_overview.ipynb"
    shutil.copy(ROOT / "nbs/tutorials/00_overview.ipynb", nb)
    sh(bin_ / "python", "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace", "--ExecutePreprocessor.timeout=300", nb,
       cwd=home, env={**env, "IN_TEST": "1"})
    cells = json.loads(nb.read_text())["cells"]
    outs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outs if o["output_type"] == "error"]
    assert not any("installing mtssl_nb" in "".join(o.get("text", "")) for o in outs)
    assert sum("image/png" in o.get("data", {}) for o in outs) >= 3  # its figures were drawn

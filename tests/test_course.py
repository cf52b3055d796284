"""The course notebooks where students are: every walkthrough and every assignment starts with the same install cell and
states its measured run time at its top, and each runs top to bottom (IN_TEST set, as under nbdev-test) in a fresh
kernel of a virtual environment that has neither mtssl_nb nor ipywidgets.

That environment sees this checkout's dependencies (torch, ...) through a path file, but not the editable mtssl_nb (the
`.pth` files that make it importable are not read from there), and a line of that path file makes `import ipywidgets`
fail, as where it is not installed. The first notebook's install cell installs mtssl_nb from this checkout (`pip
install`, a real build); the walkthroughs then run in new kernels of that environment, where the cell finds the package
and does nothing, and their explorers and training monitor show static figures. These runs are the walkthroughs' run of
record (tests/test_notebooks.py leaves them out); the assignment solutions run here as a student runs them, and again
through the grader in tests/test_assignments.py.
"""
import json
import re
import subprocess
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock
from nbclient import NotebookClient
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGHS = sorted((ROOT / "nbs" / "tutorials").glob("[0-9]*.ipynb"))
SOLUTIONS = sorted((ROOT / "instructor" / "solutions").glob("*.ipynb"))
TEMPLATES = sorted((ROOT / "assignments").glob("*.ipynb"))
COURSE = WALKTHROUGHS + SOLUTIONS
SKIP_FLAGS = ("#| slow", "#| gpu")  # pyproject's tst_flags: cells nbdev-test skips unless asked
RUN_TIME = re.compile(r"^\*Run time: about [\d.]+ (s|min) on 2 CPU cores \(measured: `python bench/notebook_times\.py`", re.M)


def first_code(path: Path) -> str:
    return next("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("nb", COURSE + TEMPLATES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_top_of_notebook(nb):
    "The same install cell first; the measured run time stated in the first markdown cell."
    cells = json.loads(nb.read_text())["cells"]
    assert first_code(nb) == first_code(COURSE[0]) and first_code(nb).startswith("# Setup: installs mtssl_nb"), \
        f"{nb.name}: its first code cell is not the install cell of {COURSE[0].name}"
    top = "".join(next(c for c in cells if c["cell_type"] == "markdown")["source"])
    assert RUN_TIME.search(top), f"{nb.name}: no '*Run time: about ... on 2 CPU cores (measured: ...' line in its first markdown cell"


@pytest.fixture(scope="session")
def fresh(tmp_path_factory):
    "(python, kernel_dirs): a virtual environment without mtssl_nb and ipywidgets, after one install cell has run in it."
    home = tmp_path_factory.mktemp("fresh")
    env_dir = home / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    (site / "_checkout_deps.pth").write_text(f"{sysconfig.get_paths()['purelib']}\nimport sys; sys.modules['ipywidgets'] = None\n")
    gone = subprocess.run([python, "-c", "import mtssl_nb"], capture_output=True, text=True, cwd=home)
    assert gone.returncode != 0 and "No module named 'mtssl_nb'" in gone.stderr, gone.stderr
    spec = home / "kernels" / "fresh"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "fresh", "language": "python",
         "env": {"IN_TEST": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}}))  # figures inline, as in JupyterLab
    (ROOT / "build").mkdir(exist_ok=True)
    with FileLock(ROOT / "build" / ".course-install.lock"):  # one in-tree build at a time (pytest -n 2: a venv per worker)
        out = run([nbformat.v4.new_code_cell(first_code(COURSE[0]))], python, home / "kernels", cwd=ROOT / "nbs" / "tutorials")
    said = "".join(o.get("text", "") for o in out.cells[0].outputs)
    assert f"installing mtssl_nb from {ROOT}" in said, said
    where = subprocess.check_output([python, "-c", "import mtssl_nb; print(mtssl_nb.__file__)"], text=True, cwd=home)
    assert where.startswith(str(site)), where  # installed into the fresh environment, not found in the checkout
    return python, home / "kernels"


def run(cells, python, kernel_dirs, cwd, timeout=900):
    "Run `cells` (or a notebook) top to bottom in a new kernel of `python`, in folder `cwd`; returns the executed notebook."
    nb = cells if isinstance(cells, nbformat.NotebookNode) else nbformat.v4.new_notebook(cells=cells)
    km = KernelManager(kernel_name="fresh", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dirs)]))
    try: return NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}}).execute()
    finally:  # nbclient leaves a kernel it was given running (about 1 GB each, for the rest of the test run)
        if km.has_kernel: km.shutdown_kernel(now=True)


def outputs(nb, mime: str) -> int:
    return sum(mime in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.parametrize("nb", COURSE, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_runs_fresh_without_widgets(nb, fresh):
    python, kernels = fresh
    book = nbformat.read(nb, as_version=4)
    book.cells = [c for c in book.cells if not (c.cell_type == "code" and c.source.lstrip().startswith(SKIP_FLAGS))]
    done = run(book, python, kernels, cwd=nb.parent)  # a cell that raises fails here, with its traceback
    text = "\n".join(o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs)
    assert "installing mtssl_nb" not in text  # installed once already: the cell found it and did nothing
    assert not outputs(done, "application/vnd.jupyter.widget-view+json"), f"{nb.name}: a widget was shown without ipywidgets"
    src = nb.read_text()
    if "Explorer(" in src: assert "A static view (no live widgets here" in text, f"{nb.name}: its explorer did not fall back to a figure"
    if "TrainingMonitor(" in src:
        pictures = [o for c in done.cells for o in getattr(c, "outputs", []) if "image/png" in o.get("data", {})
                    and "step" in o["data"].get("text/plain", "")]
        assert pictures, f"{nb.name}: the training monitor showed no picture of its curves"
    assert outputs(done, "image/png"), f"{nb.name}: no figure was drawn"

"""How long each walkthrough and assignment takes a student, top to bottom at its own settings (IN_TEST unset).

    python bench/notebook_times.py                      # every walkthrough and assignment solution
    python bench/notebook_times.py nbs/tutorials/01_relative_position.ipynb
    python bench/notebook_times.py --write              # and state each time at the notebook's top

Each notebook runs alone, one after the other, in a new kernel of this Python (nbclient), in an empty temporary folder
(so no earlier run is found and reused, as on a student's first run). Nothing else should run on the machine meanwhile:
the times are the notebooks', on whatever cores this machine has (the figures the notebooks quote were measured on 2).
The assignments are timed on their solutions (instructor/solutions): a template stops at its first unanswered question.

`--write` puts one line under each notebook's title, `*Run time: about ... on 2 CPU cores (measured: ...).*`, replacing
an earlier one; regenerate the templates afterwards (`mtssl grade --make-templates`) so that they say the same, and run
`nbdev-clean`. Writes runs/bench/notebook_times.json: {notebook: seconds}, with the cores and the date.
"""
from __future__ import annotations

import argparse, datetime, json, os, re, sys, tempfile, time
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = sorted((ROOT / "nbs" / "tutorials").glob("[0-9]*.ipynb")) + sorted((ROOT / "instructor" / "solutions").glob("*.ipynb"))
LINE = re.compile(r"^\*Run time: about .*\*\n?", re.M)


def stated(seconds: float, date: str) -> str:
    "The line a notebook's top gets: the time rounded up (10 s steps under 2 min, half minutes above)."
    t = f"{-(-seconds // 10) * 10:.0f} s" if seconds < 120 else f"{-(-seconds // 30) / 2:g} min"
    return f"*Run time: about {t} on 2 CPU cores (measured: `python bench/notebook_times.py`, {date}).*"


def time_notebook(path: Path, kernels: Path, timeout: int) -> float:
    "Seconds to run `path` top to bottom in a new kernel, in an empty folder; raises on a failing cell."
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name="bench", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    with tempfile.TemporaryDirectory() as cwd:
        t0 = time.perf_counter()
        NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": cwd}}).execute()
        return time.perf_counter() - t0


def write_line(path: Path, line: str):
    "Put `line` under the title in the first markdown cell (replacing an earlier one), keeping the file's JSON layout."
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    title, _, rest = LINE.sub("", "".join(cell["source"])).partition("\n")
    rest = rest.strip("\n")
    cell["source"] = (f"{title}\n\n{line}" + (f"\n\n{rest}" if rest else "")).splitlines(True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every walkthrough and assignment solution")
    p.add_argument("--write", action="store_true", help="state each time at the notebook's top")
    p.add_argument("--timeout", type=int, default=3600, help="seconds a cell may take")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "notebook_times.json")
    a = p.parse_args(argv)
    date = datetime.date.today().isoformat()
    times = {}
    with tempfile.TemporaryDirectory() as kernels:
        (Path(kernels) / "bench").mkdir()
        (Path(kernels) / "bench" / "kernel.json").write_text(json.dumps(  # this Python's kernel, whatever kernelspecs are installed
            {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "bench",
             "language": "python", "env": {"IN_TEST": ""}}))  # the notebooks' own settings, not the tests'
        for nb in a.notebooks or DEFAULT:
            nb = nb.resolve()
            print(f"{nb.relative_to(ROOT)} ...", end=" ", flush=True)
            times[nb.relative_to(ROOT).as_posix()] = s = round(time_notebook(nb, Path(kernels), a.timeout), 1)
            print(f"{s:.0f} s")
            if a.write: write_line(nb, stated(s, date))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"cores": os.cpu_count(), "date": date, "seconds": times}, indent=1) + "\n")
    print(f"total {sum(times.values()) / 60:.1f} min on {os.cpu_count()} cores; written to {a.out}")


if __name__ == "__main__":
    main()

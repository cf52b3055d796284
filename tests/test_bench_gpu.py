"""bench/gpu.py, the one-run GPU check, kept working between GPU runs: end to end on the CPU at toy sizes, without the
packages a GPU machine's image may lack (PyAV, nbdev, Jupyter's widgets, plotly)."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ABSENT = ("av", "nbdev", "execnb", "ipywidgets", "anywidget", "plotly", "jupyterlab", "google_crc32c")


def run_gpu_bench(tmp_path, *args):
    "Run the script in a fresh interpreter in which importing any of ABSENT fails, as on a machine without them."
    site = tmp_path / "site"; site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import sys, importlib.abc\n"
        f"ABSENT = {ABSENT!r}\n"
        "class Absent(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ABSENT: raise ModuleNotFoundError(f'No module named {name!r} (absent in this test)', name=name)\n"
        "sys.meta_path.insert(0, Absent())\n")
    env = {**os.environ, "PYTHONPATH": str(site)}  # threads as the suite sets them (conftest: one per worker)
    out = tmp_path / "gpu.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--device", "cpu", "--out", str(out), *args],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return p, (json.loads(out.read_text()) if out.is_file() else None)


def test_gpu_bench_runs_on_the_cpu(tmp_path):
    p, res = run_gpu_bench(tmp_path, "--quick")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert set(res["sections"]) == {"trunk", "step", "resume", "preset"}
    assert not [s for s, r in res["sections"].items() if "error" in r or "skipped" in r], res["sections"]
    trunk = res["sections"]["trunk"]["rows"]
    assert [r["preset"] for r in trunk] == ["resnet101", "torchvision-resnet101"] and trunk[0]["vs_tv"] > 0
    assert all(r["gflop_per_step"] > 0 for r in trunk)  # counted, not assumed
    step = res["sections"]["step"]["rows"][0]
    assert set(step["per_task"]) == {"relpos", "color", "exemplar", "motion"}
    assert all(t["img_s"] > 0 and t["make_batch_ms"] > 0 for t in step["per_task"].values())
    assert 0 < step["pretext_share"] < 1 and 0 < step["step_over_trunk"]
    resume = res["sections"]["resume"]
    assert resume["ok"] and resume["rng_restored"] and resume["max_rel_loss_diff"] == 0.0  # fp32 on a CPU: the same losses exactly
    assert sorted(resume["losses_resumed"]) == ["5", "6", "7", "8"]
    assert res["sections"]["preset"]["steps"] == 3 and res["sections"]["preset"]["trunk"] == "resnet50, width 1.0"  # the gpu preset's own trunk
    assert res["targets"]["trunk_vs_tv_compiled"]["met"] is None  # no compiled rows on a CPU unless asked: not measured, not passed
    assert "step_over_trunk" in p.stdout and "target" in p.stdout


def test_gpu_bench_budget_skips_with_a_reason(tmp_path):
    p, res = run_gpu_bench(tmp_path, "--quick", "--only", "resume", "--budget", "1")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "needs about" in res["sections"]["resume"]["skipped"] and "skipped" in p.stdout

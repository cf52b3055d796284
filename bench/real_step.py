"""The `real` preset's training on a CPU: steps per second of this checkout against an older commit, measured in one run.

    python bench/real_step.py --images folder:DATA/imagenette-128/train                # this checkout against 9ca00b0
    python bench/real_step.py --images folder:DATA/imagenette-128/train --old REV --steps 600

Each code version trains the `real` preset (four tasks on the 6-unit trunk, per-task RMSProp) from a fresh run folder
for `--steps` steps in a process of its own: the old one from a `git worktree` of `--old`, the new one from this
checkout. The time is from the first step to the last, as a user waits for it: reading and decoding images (and the
cache filling up, where the version has one), the pretext batches, forward, backward and the four optimisers. The
versions run one after another, never side by side (two torch processes on 2 cores slow each other 10x). Each
version's own timers say where its time went: `data` (loaders), `make_batch` and `update` per task.

Writes runs/bench/real_step.json: {steps, images, versions: {old, new}: {rev, seconds, steps_per_s, timers_s}, speedup}.
"""
from __future__ import annotations

import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
import torch, mtssl_nb
from mtssl_nb.train import Trainer, load_train_config
assert mtssl_nb.__file__.startswith(sys.argv[1]), (mtssl_nb.__file__, sys.argv[1])
steps, images = int(sys.argv[2]), sys.argv[3]
with tempfile.TemporaryDirectory() as d:
    cfg = load_train_config("real", [f"images={images}", f"steps={steps}", f"out_dir={d}/run", f"ckpt_every={10 * steps}", "log_every=50"])
    tr = Trainer(cfg, progress=False)
    t0 = time.perf_counter()
    tr.run()
    dt = time.perf_counter() - t0
print(json.dumps(dict(seconds=dt, steps_per_s=steps / dt, threads=torch.get_num_threads(), module=mtssl_nb.__file__,
                      timers_s={k: round(v / steps, 4) for k, v in tr.timers.items()})))
"""


def run_version(tree: Path, steps: int, images: str) -> dict:
    "Train `steps` steps of the real preset with the code in `tree`, in a new process; its timings."
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(steps), images], capture_output=True, text=True, env=env, cwd=tree)
    if p.returncode: raise SystemExit(f"the run in {tree} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True, help="the image tasks' data, e.g. folder:DATA/imagenette-128/train")
    ap.add_argument("--old", default="9ca00b0", help="the commit to compare against (default: 9ca00b0, before the speed-ups)")
    ap.add_argument("--steps", type=int, default=600, help="steps each version trains (default 600)")
    ap.add_argument("--out", default="runs/bench/real_step.json")
    a = ap.parse_args()
    rev = subprocess.run(["git", "rev-parse", "--short", a.old], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=ROOT).stdout.strip())
    kind, _, rest = a.images.partition(":")
    if rest and kind == "folder": a.images = f"folder:{Path(rest).resolve()}"  # each version runs in its own folder: the path must not be relative
    out = dict(steps=a.steps, images=a.images, date=time.strftime("%Y-%m-%d"), versions={})
    with tempfile.TemporaryDirectory() as d:
        old_tree = Path(d) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), rev], cwd=ROOT, check=True, capture_output=True)
        try:
            for name, tree, label in (("old", old_tree, rev), ("new", ROOT, head + (" + uncommitted changes" if dirty else ""))):
                print(f"{name} ({label}): training {a.steps} steps of the real preset...", flush=True)
                out["versions"][name] = dict(rev=label, **run_version(tree, a.steps, a.images))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, capture_output=True)
    old, new = out["versions"]["old"], out["versions"]["new"]
    out["speedup"] = round(new["steps_per_s"] / old["steps_per_s"], 2)
    print(f"\n{'version':<36}{'steps/s':>9}{'s/step':>9}")
    for name in ("old", "new"):
        v = out["versions"][name]
        print(f"{name + ' (' + v['rev'] + ')':<36}{v['steps_per_s']:>9.2f}{1 / v['steps_per_s']:>9.3f}")
    print(f"speed-up: {out['speedup']}x (target 2x)\n\nwhere a step goes (s/step, each version's trainer timers):")
    keys = sorted(set(old["timers_s"]) | set(new["timers_s"]))
    for k in keys: print(f"  {k:<22}{old['timers_s'].get(k, float('nan')):>9.4f}{new['timers_s'].get(k, float('nan')):>9.4f}")
    path = Path(a.out); path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

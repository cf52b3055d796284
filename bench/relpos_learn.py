"""Does relative position learn on real photos, and what does each anti-shortcut treatment cost? Held-out accuracy.

    python bench/relpos_learn.py --data folder:DATA/imagenette-128                   # every row, about 10 minutes on 2 cores
    python bench/relpos_learn.py --data folder:DATA/imagenette-128 --rows paper none --steps 3000

Each row trains relative position alone (`use=[relpos]`) with the `real` preset's trunk and task settings on
ROOT/train for `--steps` steps, then judges the head on pairs cut from ROOT/val, images no step trained on
(`relpos_quality`: 4 pairs an image, the row's own grid and treatments; chance 1/8), and on pairs cut from 512
of the ROOT/train images it trained on (`train_acc`: a held-out accuracy close to it says the head underfits). The rows take the paper's
treatments away one at a time, then all of them: what each one makes harder is what the network would
otherwise have used. One seed a row; the interval is the 95% Wilson interval over the scored pairs (pairs of
one image are not independent, so read it as a lower bound on the noise).

Writes runs/bench/relpos_learn.json: {steps, data, rows: {name: {overrides, acc, acc_ci, train_acc, pairs, train_s}}}.
"""
from __future__ import annotations

import argparse, json, tempfile, time
from pathlib import Path

import torch

from mtssl_nb.eval.core import _split_folders, _resized, wilson
from mtssl_nb.data import ImageFolderSource
from mtssl_nb.tasks.relpos import relpos_quality
from mtssl_nb.train import Trainer, load_train_config

S = "tasks.relpos.settings."
ROWS = {  # name -> settings over the real preset's relpos (24 px patches, gap 12, jitter 3, colour dropping, a third downsampled)
    "paper": [],
    "no colour dropping": [S + "color=none"],
    "no downsampling": [S + "downsample_p=0"],
    "no normalisation": [S + "normalize=false"],
    "no jitter": [S + "jitter=0"],
    "none of them": [S + "color=none", S + "downsample_p=0", S + "normalize=false", S + "jitter=0"],
    "input 2x (48 px to the trunk)": [S + "input_size=48"],
    # the regime, not the treatments: the grid's geometry and the head
    "patch 32, gap 8 (128 px crops)": [S + "patch=32", S + "gap=8", S + "jitter=2", "tasks.relpos.size=128"],
    "gap 6": [S + "gap=6"],
    "head pooled to 1x1": [S + "pool=1"],
    "head 1024 wide": [S + "hidden=1024"],
    # the sampling: every neighbour of one centre patch (8 pairs from 9 patch forwards) instead of one pair an image
    "every neighbour (8 pairs an image)": [S + "pairs=8"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="folder:ROOT, where ROOT holds train/ (pretext training) and val/ (held-out pairs)")
    ap.add_argument("--rows", nargs="*", default=list(ROWS), help=f"rows to run (default all): {', '.join(repr(r) for r in ROWS)}")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--n-test", type=int, default=1024, help="held-out images (4 pairs each)")
    ap.add_argument("--extra", nargs="*", default=[], help="more key=value settings for every row")
    ap.add_argument("--out", default="runs/bench/relpos_learn.json")
    a = ap.parse_args()
    if bad := [r for r in a.rows if r not in ROWS]: raise SystemExit(f"unknown row(s) {bad}; choose from {list(ROWS)}")
    pair = _split_folders(a.data)
    if pair is None: raise SystemExit(f"--data {a.data!r}: give folder:ROOT where ROOT holds train/ and val/")
    out = dict(steps=a.steps, data=a.data, extra=a.extra, date=time.strftime("%Y-%m-%d"), rows={})
    tests, val = {}, ImageFolderSource(pair[1], verify="none", progress=False)
    idx = torch.randperm(len(val), generator=torch.Generator().manual_seed(0))[:a.n_test].tolist()
    seen, train = {}, ImageFolderSource(pair[0], verify="none", progress=False)
    seen_idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:512].tolist()
    for name in a.rows:
        with tempfile.TemporaryDirectory() as d:
            cfg = load_train_config("real", [f"images=folder:{pair[0]}", "use=[relpos]", f"steps={a.steps}", f"out_dir={d}/run",
                                             f"ckpt_every={10 * a.steps}", *ROWS[name], *a.extra])
            t0 = time.time()
            tr = Trainer(cfg, progress=True).run()
            dt = time.time() - t0
        task, size = tr.tasks["relpos"], cfg.tasks["relpos"].size
        if size not in tests: tests[size] = _resized(val, idx, size)[0]  # the same held-out images, at the row's crop size
        if size not in seen: seen[size] = _resized(train, seen_idx, size)[0]
        q, qt = relpos_quality(tr.net, task, tests[size]), relpos_quality(tr.net, task, seen[size])
        ci = wilson(round(q["acc"] * q["pairs"]), q["pairs"])
        out["rows"][name] = dict(overrides=ROWS[name], acc=round(q["acc"], 4), acc_ci=[round(c, 4) for c in ci], train_acc=round(qt["acc"], 4),
                                 pairs=q["pairs"], train_s=round(dt))
        print(f"{name:<32} held-out accuracy {q['acc']:.3f} ({ci[0]:.3f}-{ci[1]:.3f}), {q['pairs']} pairs; on training images {qt['acc']:.3f}; "
              f"{dt:.0f} s", flush=True)
        path = Path(a.out); path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
    print(f"\n| row | held-out accuracy (95% interval) | on training images |\n|---|---|---|")
    for name, r in out["rows"].items(): print(f"| {name} | {r['acc']:.3f} ({r['acc_ci'][0]:.3f}-{r['acc_ci'][1]:.3f}) | {r['train_acc']:.3f} |")
    print(f"\nchance 0.125; {a.steps} steps a row; written to {a.out}")


if __name__ == "__main__":
    main()

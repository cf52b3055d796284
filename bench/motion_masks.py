"""Motion masks from optical flow, measured against exact masks (synthetic clips) and human masks (real clips).

    python bench/motion_masks.py                      # 24 held-out synthetic clips: runs/bench/motion_masks.json
    python bench/motion_masks.py --quick              # 4 synthetic clips, without TV-L1's minutes
    python bench/motion_masks.py --real DIR           # clips with human masks in DIR, then the synthetic table
    python bench/motion_masks.py --real DIR --exclude 'segtrack-*' --sizes 96 128 192

Synthetic (the default table): each flow method runs the whole default segmenter
(`mtssl_nb.motion.segment_motion`), then the first version (`segmenter="pair"`) and two baselines with
the same morphology: frame difference (luma change over 25 levels) and median-flow subtraction (flow
minus its median, over 1 px/frame). IoU is per frame against the exact mask, averaged over every frame
of every clip; a skipped frame counts as IoU 0 (`mean_iou`), `kept_iou` averages kept frames only,
`coverage` is the share kept. The clips are 16 frames of 128x128 (camera pan 0.5-2 px/frame, 1-3
objects) drawn from `EVAL_SEED`, not the seed the defaults were first tuned on.

Real (`--real DIR`, any folder of `NAME.mp4` + `NAME.masks.npz` with a mask for every frame): the rows
of `mtssl_nb.motion.ABLATIONS` (the default, each idea of the clip segmenter taken away, the first
version) and the default with each other flow method of `--methods`, scored by DAVIS's protocol: J per clip is the mean IoU over its frames (skipped frames 0)
with our masks scaled up to the human masks' size, mean J averages the clips; also J over kept frames
only and the share kept. `--sizes` adds the default at other working sizes. Writes
`runs/bench/motion_masks_real.json` and a figure per clip (frame, human mask, our mask) in
`runs/bench/motion_masks_real/`.

`ms_per_pair` is wall time per frame pair of the whole segmenter (flow both ways, camera models, cut
checks, masks) with OpenCV and torch on one thread; decoding and resizing the video are not counted.
"""
from __future__ import annotations

import argparse, json, platform
from pathlib import Path

import cv2
import numpy as np

from mtssl_nb.motion import (ABLATIONS, EVAL_SEED, FLOW_METHODS, MotionConfig, _one_thread, _truth_size, evaluate_real, evaluate_segmenter,
                             mask_iou, real_clips, segment_motion)


def synthetic_table(n: int, methods, size: int, out: Path) -> list[dict]:
    rows = evaluate_segmenter(methods=methods, n_clips=n, seed=EVAL_SEED, size=size, progress=True)
    pair = evaluate_segmenter(methods=("dis",), n_clips=n, seed=EVAL_SEED, size=size, cfg=MotionConfig(segmenter="pair"), baselines=False)[0]
    rows.insert(len(methods), dict(pair, method="dis, pair (first version)"))
    default = MotionConfig().method
    for r in rows:
        r.update(size=size, seed=EVAL_SEED, default=r["method"] == default, cpu=platform.processor() or platform.machine(), opencv=cv2.__version__)
    print(f"\nSynthetic: {n} held-out clips x 16 frames, {size} px, one thread; skipped frames count as IoU 0")
    print(f"{'method':<27}{'mean IoU':>9}{'kept IoU':>9}{'coverage':>9}{'ms/pair':>10}")
    for r in rows:
        print(f"{r['method'] + (' *' if r['default'] else ''):<27}{r['mean_iou']:>9.3f}{r['kept_iou']:>9.3f}{r['coverage']:>9.2f}{r['ms_per_pair']:>10.2f}")
    print("* the default segmenter and flow")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print("wrote", out)
    return rows


def clip_figure(name: str, clip, cfg: MotionConfig, path: Path):
    "Three frames of a clip: the frame, the human mask, our mask (IoU in the title)."
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with _one_thread(): r = segment_motion(clip.frames, cfg)
    truth = clip.masks.numpy()
    H, W = truth.shape[1:]
    ts = np.linspace(0, len(clip) - 1, 5).round().astype(int)[1:-1]
    fig, ax = plt.subplots(3, len(ts), figsize=(3.2 * len(ts), 3 * 0.6 * H / W * 3 + 0.6), squeeze=False)
    for j, t in enumerate(ts):
        k = np.flatnonzero(r.frames == t)
        ours = _truth_size(r.masks[k], (H, W))[0] if len(k) else None  # scaled up as the scores are
        ax[0, j].imshow(clip.frames[t].permute(1, 2, 0).numpy()); ax[0, j].set_title(f"{name}: frame {t}", fontsize=8)
        ax[1, j].imshow(truth[t], cmap="gray"); ax[1, j].set_title("human mask", fontsize=8)
        if ours is None: ax[2, j].text(0.5, 0.5, "skipped", ha="center", va="center", transform=ax[2, j].transAxes); ax[2, j].set_title("ours: skipped (IoU 0)", fontsize=8)
        else: ax[2, j].imshow(ours, cmap="gray"); ax[2, j].set_title(f"ours, IoU {float(mask_iou(ours, truth[t])):.2f}", fontsize=8)
    for a in ax.ravel(): a.axis("off")
    fig.tight_layout(); fig.savefig(path, dpi=80); plt.close(fig)


def real_table(root: str, exclude: list[str], sizes: list[int], methods, out: Path) -> list[dict]:
    clips = real_clips(root, exclude)
    settings = dict(ABLATIONS)
    base = MotionConfig().size
    settings.update({f"clip, {m} flow": dict(method=m) for m in methods if m != MotionConfig().method})
    settings.update({f"clip (default), {s} px": dict(size=s) for s in sizes if s != base})
    rows = evaluate_real(clips, settings, progress=True)
    names = [n for n, _ in clips]
    frames = sum(len(c) for _, c in clips)
    print(f"\nReal: {len(clips)} clips with human masks from {root} ({frames} frames{', excluded ' + ' '.join(exclude) if exclude else ''}); "
          f"{base} px unless named, one thread; J per clip = mean IoU over its frames (skipped = 0), mean J over clips")
    w = max(len(r["name"]) for r in rows) + 2
    print(f"{'settings':<{w}}{'mean J':>8}{'kept J':>8}{'kept':>6}{'ms/pair':>9}  " + " ".join(f"{n[:10]:>10}" for n in names))
    for r in rows:
        print(f"{r['name']:<{w}}{r['mean_j']:>8.3f}{r['kept_j']:>8.3f}{r['coverage']:>6.2f}{r['ms_per_pair']:>9.1f}  "
              + " ".join(f"{r['per_clip'][n]['j']:>10.3f}" for n in names))
    for r in rows: r.update(root=str(root), excluded=exclude, cpu=platform.processor() or platform.machine(), opencv=cv2.__version__)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    figs = out.with_suffix("")
    figs.mkdir(exist_ok=True)
    for n, c in clips: clip_figure(n, c, MotionConfig(), figs / f"{n}.png")
    print("wrote", out, "and", len(clips), "figures in", figs)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 synthetic clips and no TV-L1")
    ap.add_argument("--clips", type=int, default=None, help="held-out synthetic clips (default 24, --quick 4)")
    ap.add_argument("--methods", nargs="+", default=None, choices=FLOW_METHODS, help="flow methods of both tables (default: all; --quick or --real: dis farneback)")
    ap.add_argument("--size", type=int, default=128, help="working size of the synthetic clips")
    ap.add_argument("--real", metavar="DIR", help="also score clips with human masks in DIR (NAME.mp4 + NAME.masks.npz)")
    ap.add_argument("--exclude", nargs="+", default=[], metavar="GLOB", help="--real: leave out clips whose name matches")
    ap.add_argument("--sizes", nargs="+", type=int, default=[], help="--real: the default segmenter at these working sizes too")
    ap.add_argument("--out", default="runs/bench/motion_masks.json")
    ap.add_argument("--real-out", default="runs/bench/motion_masks_real.json")
    a = ap.parse_args(argv)
    n = a.clips or (4 if a.quick else 24)
    methods = a.methods or (("dis", "farneback") if a.quick or a.real else FLOW_METHODS)
    if a.real: real_table(a.real, a.exclude, a.sizes, methods, Path(a.real_out))
    synthetic_table(n, methods, a.size, Path(a.out))


if __name__ == "__main__":
    main()

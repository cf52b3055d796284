"""Motion masks from optical flow, measured against the exact masks of held-out synthetic clips.

    python bench/motion_masks.py            # 24 clips: a table and runs/bench/motion_masks.json
    python bench/motion_masks.py --quick    # 4 clips, without TV-L1's minutes

Each flow method runs the whole segmenter (`mtssl_nb.motion.segment_motion` with its defaults, only the
flow method replaced): flow both ways, homography with RANSAC, cut and stillness checks, hysteresis,
morphology, the two neighbours combined. Two baselines get the same morphology: frame difference (luma
change over 25 levels) and median-flow subtraction (default flow minus its median, over 1 px/frame).
IoU is per frame against the exact mask, averaged over every frame of every clip; a frame the segmenter
skips counts as IoU 0 (`mean_iou`), `kept_iou` averages kept frames only, `coverage` is the share kept.
`ms_per_pair` is wall time per frame pair with OpenCV and torch on one thread. The clips are 16 frames of
128x128 (camera pan 0.5-2 px/frame, 1-3 objects) drawn from `EVAL_SEED`, not the seed the defaults were
tuned on.
"""
from __future__ import annotations

import argparse, json, platform
from pathlib import Path

import cv2

from mtssl_nb.motion import EVAL_SEED, FLOW_METHODS, MotionConfig, evaluate_segmenter


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 clips and no TV-L1")
    ap.add_argument("--clips", type=int, default=None, help="held-out clips (default 24, --quick 4)")
    ap.add_argument("--methods", nargs="+", default=None, choices=FLOW_METHODS, help="flow methods (default: all; --quick: dis farneback)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--out", default="runs/bench/motion_masks.json")
    a = ap.parse_args(argv)
    n = a.clips or (4 if a.quick else 24)
    methods = a.methods or (("dis", "farneback") if a.quick else FLOW_METHODS)
    rows = evaluate_segmenter(methods=methods, n_clips=n, seed=EVAL_SEED, size=a.size, progress=True)
    default = MotionConfig().method
    for r in rows:
        r.update(size=a.size, seed=EVAL_SEED, default=r["method"] == default, cpu=platform.processor() or platform.machine(), opencv=cv2.__version__)
    print(f"\n{n} held-out clips x 16 frames, {a.size} px, one thread; skipped frames count as IoU 0")
    print(f"{'method':<13}{'mean IoU':>9}{'kept IoU':>9}{'coverage':>9}{'ms/pair':>10}")
    for r in rows:
        print(f"{r['method'] + (' *' if r['default'] else ''):<13}{r['mean_iou']:>9.3f}{r['kept_iou']:>9.3f}{r['coverage']:>9.2f}{r['ms_per_pair']:>10.2f}")
    print("* the default method")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()

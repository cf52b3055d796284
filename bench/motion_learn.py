"""Does the motion task learn from real video? Masks from our segmenter on some real clips, a motion-only run on them, judged on other clips' human masks.

    python bench/motion_learn.py --real DIR                       # every second clip held out for testing
    python bench/motion_learn.py --real DIR --exclude 'segtrack-*' --steps 300 --seeds 0 1 2

1. The clips of DIR (`NAME.mp4` + `NAME.masks.npz`, human masks) are split by sorted name: every
   `--test-every`-th clip (starting with the second) is held out, the others are training videos.
2. `mtssl motion-masks` runs over the training videos alone (the video files are linked into a
   folder of their own: the human masks of the training clips are never read).
3. Two motion-only runs per seed of the `tiny` preset (`use=[motion]`, `--steps` steps): one
   reading those cached masks (`tasks.motion.data=...`), one on the default synthetic clips.
4. Each run's motion head is judged (`MotionSegmentation.quality`) on the held-out clips'
   human masks (frames at the segmenter's working size, one centre crop each) and on held-out
   synthetic clips; for scale, a head that calls every pixel moving, and the segmenter itself on the
   held-out clips (its J: it sees two frames, the head one).

Prints mean and spread over seeds and writes `runs/bench/motion_learn.json`.
"""
from __future__ import annotations

import argparse, json, os, platform, time
from pathlib import Path

import numpy as np
import torch


def split(root: Path, exclude: list[str], every: int):
    from mtssl_nb.motion import real_clips
    clips = real_clips(root, exclude)
    test = [n for i, (n, _) in enumerate(clips) if i % every == 1]
    return clips, [n for n, _ in clips if n not in test], test


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", required=True, metavar="DIR", help="clips with human masks (NAME.mp4 + NAME.masks.npz)")
    ap.add_argument("--exclude", nargs="+", default=[], metavar="GLOB", help="leave out clips whose name matches")
    ap.add_argument("--test-every", type=int, default=2, help="hold out every N-th clip by sorted name, starting with the second (default 2)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--work", default="runs/bench/motion_learn", help="folder for the links, cached masks and runs")
    ap.add_argument("--out", default="runs/bench/motion_learn.json")
    a = ap.parse_args(argv)
    from mtssl_nb.cli import main as mtssl
    from mtssl_nb.eval.core import held_out
    from mtssl_nb.motion import MotionConfig, _frames_hwc, evaluate_real
    from mtssl_nb.runs import load_run
    from mtssl_nb.train import Trainer, load_train_config
    from mtssl_nb.video import Clip, save_clip
    import torch.nn.functional as F

    root, work = Path(a.real), Path(a.work)
    clips, train, test = split(root, a.exclude, a.test_every)
    print(f"train videos: {', '.join(train)}\nheld out (human masks): {', '.join(test)}")
    videos, masks, held = work / "videos", work / "masks", work / "held_out"
    for d in (videos, held): d.mkdir(parents=True, exist_ok=True)
    for n in train:
        link = videos / f"{n}.mp4"
        if not link.exists(): os.symlink((root / f"{n}.mp4").resolve(), link)
    t0 = time.perf_counter()
    if mtssl(["motion-masks", str(videos), str(masks), "--quiet"]): raise SystemExit("mtssl motion-masks failed")
    mask_s = time.perf_counter() - t0
    size = MotionConfig().size
    by_name = dict(clips)
    for n in test:  # held-out clips at the working size (resized as the segmenter resizes), human masks brought along (nearest)
        c = by_name[n]
        fr = torch.from_numpy(_frames_hwc(c.frames, size)).permute(0, 3, 1, 2).contiguous()
        mk = F.interpolate(c.masks[:, None].float(), size=fr.shape[2:], mode="nearest")[:, 0].bool()
        save_clip(Clip(fr, mk, c.fps), held / n)
    seg = evaluate_real([(n, by_name[n]) for n in test], {"segmenter": {}})[0]

    class AllMoving(torch.nn.Module):  # for scale: a "head" that calls every pixel moving
        def forward(self, tb): return torch.full(tb.y.shape, 10.0)

    rows = []
    for data, over in (("real video, our masks", [f"tasks.motion.data={masks}"]), ("synthetic clips", [])):
        for s in a.seeds:
            cfg = load_train_config("tiny", ["use=[motion]", f"steps={a.steps}", f"seed={s}", "log_every=50", f"ckpt_every={a.steps}",
                                             f"out_dir={work / ('real' if over else 'synthetic') / f'seed{s}'}", *over])
            t1 = time.perf_counter()
            tr = Trainer(cfg, progress=False)
            try: tr.run()
            finally: tr.close()
            run = load_run(cfg.out_dir)
            if not rows: everything = run.tasks["motion"].quality(AllMoving(), held)["iou"]
            q_real = run.tasks["motion"].quality(run.net, held)
            q_syn = run.tasks["motion"].quality(run.net, held_out(run.tasks["motion"], 64, n=256))
            rows.append(dict(train=data, seed=s, iou_real=round(q_real["iou"], 4), iou_synthetic=round(q_syn["iou"], 4),
                             frames_real=q_real["frames"], seconds=round(time.perf_counter() - t1, 1)))
            print(rows[-1], flush=True)
    print(f"\nMotion-only runs of the tiny preset, {a.steps} steps, seeds {' '.join(map(str, a.seeds))}; "
          f"IoU of the head's masks (threshold 0.5) against held-out masks")
    print(f"{'trained on':<24}{'held-out real (human)':>24}{'held-out synthetic':>22}")
    for data in dict.fromkeys(r["train"] for r in rows):
        rr = [r for r in rows if r["train"] == data]
        f = lambda k: f"{np.mean([r[k] for r in rr]):.3f} +- {np.std([r[k] for r in rr], ddof=1) if len(rr) > 1 else 0:.3f}"
        print(f"{data:<24}{f('iou_real'):>24}{f('iou_synthetic'):>22}")
    print(f"{'every pixel moving':<24}{everything:>24.3f}")
    print(f"the segmenter itself on the held-out clips (two frames of video, not one): mean J {seg['mean_j']:.3f}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(train=train, test=test, steps=a.steps, seeds=a.seeds, mask_seconds=round(mask_s, 1),
                                   all_moving_iou=round(everything, 4), segmenter_j=seg["mean_j"], segmenter_per_clip=seg["per_clip"], rows=rows,
                                   cpu=platform.processor() or platform.machine(), torch=torch.__version__), indent=1))
    print("wrote", out)


if __name__ == "__main__":
    main()

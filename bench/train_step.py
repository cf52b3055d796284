"""Training steps: each task alone against the four together, and (on a GPU) the paper preset's throughput.

    python bench/train_step.py              # CPU: the tiny preset; GPU too when there is one
    python bench/train_step.py --quick      # fewer rounds
    python bench/train_step.py --device cuda --paper-batch 128

CPU, `tiny` preset (per-task RMSProp, the preset's batch sizes): the step time of each task trained alone
(`use=[task]`) and of the four together. `combined_over_sum` is the combined step over the sum of the four
single-task steps: 1.0 means combining costs nothing beyond the tasks themselves (target: at most 1.1).
Each configuration is a real `Trainer`; its loaders are drained for a few batches first and those batches
replayed, so the timings hold the pretext batch making, forward, backward and optimiser steps but not
decoding and cropping (the loaders' own time is reported apart, as `loader_s`). The configurations take
turns round by round so that all see the same machine; times are medians over the rounds.

GPU (when there is one), `paper` preset with the package photos and synthetic clips standing in for
ImageNet and videos (the data only feeds the replayed batches): images/s of the combined step in bf16
autocast with channels_last, with and without `torch.compile` on the trunk; `mfu` is the step's FLOPs
(torch's FlopCounterMode, pretext ops included) per second over the GPU's dense bf16 peak; `pretext_share`
is the share of the step spent in `make_batch` (timed with device synchronisation).

Writes runs/bench/train_step.json: {device, single_step_s: {task: s}, combined_step_s, combined_over_sum,
img_s, mfu, pretext_share} (the GPU fields null on a CPU), plus the rows behind them.
"""
from __future__ import annotations

import argparse, itertools, json, statistics, sys, tempfile, time
from pathlib import Path

import torch

from mtssl_nb.train import Trainer, load_train_config

sys.path.insert(0, str(Path(__file__).parent))
from trunk import BF16_PEAK_TFLOPS  # noqa: E402  (one table of GPU peaks for every benchmark)

TASKS = ("relpos", "color", "exemplar", "motion")


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


class Replay:
    "A trainer whose task streams replay a few batches drawn from its loaders (so loading is timed apart)."
    def __init__(self, cfg, n_batches: int = 4):
        self.dir = tempfile.TemporaryDirectory()
        cfg.out_dir = Path(self.dir.name) / "run"
        self.tr = Trainer(cfg, progress=False)
        t0 = time.perf_counter()
        cached = {n: [next(s) for _ in range(n_batches)] for n, s in self.tr.streams.items()}
        self.loader_s = (time.perf_counter() - t0) / n_batches
        self.tr.streams = {n: itertools.cycle(b) for n, b in cached.items()}
        self.step = 0
        self.tr.model.train()

    def run(self, steps: int) -> float:
        "Seconds per step over `steps` steps."
        dev = self.tr.procs.device
        sync(dev); t0 = time.perf_counter()
        for _ in range(steps):
            self.tr.train_step(self.step); self.step += 1
        sync(dev)
        return (time.perf_counter() - t0) / steps


def cpu_rows(rounds: int, steps: int, overrides) -> dict:
    base = ["workers=0", "optim.warmup=0", *overrides]
    configs = {t: Replay(load_train_config("tiny", base + [f"use=[{t}]"])) for t in TASKS}
    configs["combined"] = Replay(load_train_config("tiny", base))
    for r in configs.values(): r.run(2)  # warm-up
    times = {k: [] for k in configs}
    for _ in range(rounds):
        for k, r in configs.items(): times[k].append(r.run(steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    single = {t: med[t] for t in TASKS}
    ratios = [times["combined"][i] / sum(times[t][i] for t in TASKS) for i in range(rounds)]
    return dict(single_step_s={t: round(s, 4) for t, s in single.items()}, combined_step_s=round(med["combined"], 4),
                combined_over_sum=round(statistics.median(ratios), 3), combined_over_sum_rounds=[round(x, 3) for x in ratios],
                loader_s={k: round(r.loader_s, 4) for k, r in configs.items()},
                img_s_cpu=round(configs["combined"].tr.images_per_step / med["combined"], 1))


def step_flops(rep: Replay) -> float:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc: rep.run(1)
    return float(fc.get_total_flops())


def gpu_rows(device, batch: int, steps: int, peak) -> list[dict]:
    rows = []
    for compile in (False, True):
        over = ["device=" + str(device), "precision=bf16", "channels_last=true", f"compile={str(compile).lower()}", "workers=4", "optim.warmup=0",
                "tasks.color.settings.prior_images=512"] + [f"tasks.{t}.data=" + ("synthetic" if t == "motion" else "photos") for t in TASKS] + [
                f"tasks.{t}.batch_size={batch}" for t in TASKS]
        rep = Replay(load_train_config("paper", over))
        rep.run(3 if not compile else 6)  # warm-up (compilation for every task's shapes)
        flops = step_flops(rep)
        s = rep.run(steps)  # throughput: no extra synchronisation
        t = rep.tr.timers
        for k in t: t[k] = 0.0
        rep.tr.sync_timing = True  # the pretext share: a second pass with the GPU synchronised around make_batch
        mb = t["make_batch"] / steps if rep.run(steps) else 0.0
        rows.append(dict(mode="bf16 + channels_last" + (" + compile" if compile else ""), step_s=round(s, 4),
                         img_s=round(rep.tr.images_per_step / s, 1), gflop_per_step=round(flops / 1e9, 1),
                         mfu=round(flops / s / (peak * 1e12), 4) if peak else None, pretext_share=round(mb / s, 3),
                         peak_mem_mb=round(torch.cuda.max_memory_allocated(device) / 2**20, 1)))
        del rep; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(device)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto: the CPU rows, and the GPU rows when a GPU is there; cuda: GPU rows only; cpu")
    p.add_argument("--quick", action="store_true", help="3 rounds of 3 steps")
    p.add_argument("--paper-batch", type=int, default=64, help="GPU: images per task per step of the paper preset")
    p.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak (default: looked up by name)")
    p.add_argument("--out", default="runs/bench/train_step.json")
    a = p.parse_args()
    rounds, steps = (3, 3) if a.quick else (9, 8)
    has_gpu = torch.cuda.is_available() and a.device != "cpu"
    out = dict(device="cpu", torch=torch.__version__, threads=torch.get_num_threads(), single_step_s=None, combined_step_s=None, combined_over_sum=None,
               img_s=None, mfu=None, pretext_share=None)
    if a.device != "cuda":
        print(f"CPU, tiny preset, {torch.get_num_threads()} threads, {rounds} rounds of {steps} steps (batches replayed)")
        out.update(cpu_rows(rounds, steps, []))
        print(f"{'configuration':<14}{'s/step':>9}{'loader s':>10}")
        for t in TASKS: print(f"{t:<14}{out['single_step_s'][t]:>9.3f}{out['loader_s'][t]:>10.3f}")
        print(f"{'sum of four':<14}{sum(out['single_step_s'].values()):>9.3f}")
        print(f"{'combined':<14}{out['combined_step_s']:>9.3f}{out['loader_s']['combined']:>10.3f}")
        print(f"combined / sum of singles: {out['combined_over_sum']} (rounds: {out['combined_over_sum_rounds']}; target <= 1.1)")
    if has_gpu:
        dev = torch.device("cuda")
        name = torch.cuda.get_device_name(dev)
        peak = a.peak_tflops or next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        print(f"\nGPU {name}, paper preset (ResNet-101 v2), {a.paper_batch} images per task per step; bf16 peak {peak or 'n/a'} TFLOP/s")
        rows = gpu_rows(dev, a.paper_batch, steps * 2, peak)
        print(f"{'mode':<34}{'s/step':>8}{'img/s':>8}{'GFLOP':>8}{'mfu':>7}{'pretext':>9}{'peak MB':>9}")
        for r in rows:
            print(f"{r['mode']:<34}{r['step_s']:>8.3f}{r['img_s']:>8.0f}{r['gflop_per_step']:>8.0f}{(r['mfu'] or 0):>7.3f}{r['pretext_share']:>9.3f}{r['peak_mem_mb']:>9.0f}")
        best = max(rows, key=lambda r: r["img_s"])
        out.update(device=name, gpu_rows=rows, img_s=best["img_s"], mfu=best["mfu"], pretext_share=best["pretext_share"])
    path = Path(a.out); path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()

"""The GPU check in one run: the trunk against torchvision, the paper preset's four-task step, resume, the `gpu` preset.

    python bench/gpu.py                         # on a GPU: about 6-8 minutes on an H100/H200; a table and runs/bench/gpu.json
    python bench/gpu.py --device cpu --quick    # the same code at toy sizes on a CPU, in about a minute (tests/test_bench.py runs it)
    python bench/gpu.py --only trunk step       # some sections; --budget S skips what would not finish in S seconds

It needs PyTorch, the packages the training path imports (numpy, OpenCV, scikit-image, scikit-learn, PyYAML,
TensorBoard, tqdm, fastcore) and this repository; not PyAV, nbdev, Jupyter or an installed mtssl_nb (the
repository's folder goes first on the path). bench/README.md says how to carry fastcore as a wheel to a
machine that lacks it.

Sections, each in its own try (one that fails is recorded with its error and the next still runs; the exit
status is 1 if any failed):

- `trunk`: forward+backward img/s of our ResNet-101 v2 to block3 and of torchvision's ResNet-101 cut after
  layer3 (`trunk.py`'s rows), bf16 autocast + channels_last on a GPU, eager and compiled, at 224 px (batch 64)
  and at 96 px (batch 256, the patch size); peak memory, counted FLOPs and MFU against the device's bf16 peak.
- `step`: the `paper` preset's four-task step (package photos and synthetic clips stand in for ImageNet and
  video; batches replayed so that decoding is not timed), eager and compiled: img/s in total and per task, the
  share of the step spent making pretext batches on the device, and the trunk alone (forward+backward of the
  same inputs, the same precision and compilation): `step_over_trunk` is the step's img/s over the trunk's.
- `resume`: a run trained straight through and one checkpointed halfway and resumed in a new `Trainer`: the
  losses of the second half compared (bf16 on a GPU), and the random state (CUDA's on a GPU) checked restored.
- `preset`: the `gpu` experiment preset's four-task row for a few hundred steps, then its probes: the settings
  a user's first long run starts from.

Targets (each a ratio within the run): our compiled trunk at least as fast as torchvision's compiled
(`trunk_vs_tv_compiled` >= 1) and the four-task step at no less than 85% of the trunk-only throughput
(`step_over_trunk` >= 0.85).
"""
from __future__ import annotations

import argparse, datetime, json, platform, statistics, sys, tempfile, time, traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this repository's mtssl_nb, and the other benches

try:
    import torch
    import fastcore  # noqa: F401  (mtssl_nb's notebooks export with it; a GPU image may lack it)
except ImportError as e:
    sys.exit(f"bench/gpu.py: {e.name} is missing: pip install {e.name} (bench/README.md says how to carry it as a wheel)")

from mtssl_nb.core import pick_device  # noqa: E402
from mtssl_nb.train import Trainer, load_train_config  # noqa: E402
from trunk import BF16_PEAK_TFLOPS, PeakRSS, bench_row  # noqa: E402
from train_step import Replay, step_flops  # noqa: E402

SECTIONS = ("trunk", "step", "resume", "preset")
MIN_SECONDS = dict(gpu=dict(trunk=150, step=180, resume=30, preset=60), cpu=dict(trunk=10, step=20, resume=10, preset=20))  # skip below


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize(dev)


class Memory:
    "Peak memory of a block: allocated on a GPU (above what was allocated before), resident memory added on a CPU."
    def __init__(self, dev): self.dev = dev
    def __enter__(self):
        if self.dev.type == "cuda": sync(self.dev); torch.cuda.reset_peak_memory_stats(self.dev); self.base = torch.cuda.memory_allocated(self.dev)
        else: self.rss = PeakRSS().__enter__()
        return self
    def __exit__(self, *a):
        if self.dev.type == "cuda": sync(self.dev); self.mb = (torch.cuda.max_memory_allocated(self.dev) - self.base) / 2**20
        else: self.rss.__exit__(); self.mb = self.rss.mb


def mode_of(dev) -> dict:
    "The fast settings of the device: bf16 autocast and channels_last on a GPU; fp32 on a CPU (as the trainer's `auto`)."
    return dict(bf16=True, channels_last=True) if dev.type == "cuda" else {}


def trunk_section(dev, a, peak) -> dict:
    sizes = [(224, 64), (96, 256)] if dev.type == "cuda" else [(64, 2)]
    plan = [(*sizes[0], mode_of(dev))] + ([(*sizes[0], dict(mode_of(dev), compile=True))] if a.compile else []) + [(*s, mode_of(dev)) for s in sizes[1:]]
    rows = []
    for px, batch, mode in plan:
        pair = [bench_row("resnet101", 1.0, px, batch, dev, iters=a.iters, warmup=a.warmup, peak=peak, reference=ref, **mode) for ref in (False, True)]
        pair[0]["vs_tv"] = round(pair[0]["img_s"] / pair[1]["img_s"], 3)
        rows += pair
        if dev.type == "cuda": torch.cuda.empty_cache()
    comp = [r for r in rows if r["compile"] and "vs_tv" in r]
    return dict(rows=rows, trunk_vs_tv_compiled=comp[0]["vs_tv"] if comp else None,
                trunk_vs_tv_eager=next(r["vs_tv"] for r in rows if not r["compile"] and "vs_tv" in r))


def trunk_only_s(tr: Trainer, reps: int) -> float:
    "Seconds for the trunk alone (forward, a scalar loss, backward) on one step's inputs of every task, as the step runs it."
    xs = [tb.x.reshape(-1, *tb.x.shape[-3:]) for tb in tr._batches(0).values()]
    if tr.net.channels_last: xs = [x.contiguous(memory_format=torch.channels_last) for x in xs]
    def once():
        for x in xs:
            with tr.autocast(): o = tr.net.trunk(x, units=False)  # the call MultiTaskNet.features makes: the compiled graphs are reused
            o.out.float().mean().backward()
        tr.net.zero_grad(set_to_none=True)
    once(); sync(tr.procs.device)  # the step compiled and tuned these shapes already
    t0 = time.perf_counter()
    for _ in range(reps): once()
    sync(tr.procs.device)
    return (time.perf_counter() - t0) / reps


def step_section(dev, a, peak) -> dict:
    tasks = ("relpos", "color", "exemplar", "motion")
    over = [f"device={dev}", "optim.warmup=0", f"workers={4 if dev.type == 'cuda' else 0}", f"tasks.color.settings.prior_images={512 if dev.type == 'cuda' else 16}",
            *[f"tasks.{t}.data=" + ("synthetic" if t == "motion" else "photos") for t in tasks], *[f"tasks.{t}.batch_size={a.paper_batch}" for t in tasks]]
    over += ["precision=bf16", "channels_last=true"] if dev.type == "cuda" else ["precision=fp32"]
    rows, flops = [], None
    for comp in (False, True) if a.compile else (False,):
        rep = Replay(load_train_config("paper", over + [f"compile={str(comp).lower()}"]))
        tr = rep.tr
        rep.run(a.warmup + (3 if comp else 0))  # compiles every task's shapes (static: one graph per input size)
        if flops is None: flops = step_flops(rep)  # counted in eager mode: the compiled step does the same arithmetic
        with Memory(dev) as mem: s = rep.run(a.steps)  # throughput, no extra synchronisation
        for k in tr.timers: tr.timers[k] = 0.0
        tr.sync_timing = True  # exact shares: the GPU synchronised around each timer
        s_sync = rep.run(a.steps)
        tr.sync_timing = False
        t = {k: v / a.steps for k, v in tr.timers.items()}
        per_task = {n: dict(images=tr.cfg.tasks[n].batch_size, make_batch_ms=round(1e3 * t[f"make_batch/{n}"], 2), update_ms=round(1e3 * t[f"update/{n}"], 2),
                            img_s=round(tr.cfg.tasks[n].batch_size / (t[f"make_batch/{n}"] + t[f"update/{n}"]), 1)) for n in tasks}
        trunk_s = trunk_only_s(tr, max(1, a.steps // 2))
        ips = tr.images_per_step
        rows.append(dict(mode=("bf16 + channels_last" if dev.type == "cuda" else "fp32") + (" + compile" if comp else ""), compile=comp, step_s=round(s, 4),
                         img_s=round(ips / s, 1), per_task=per_task, pretext_share=round(t["make_batch"] / s_sync, 3), data_share=round(t["data"] / s_sync, 3),
                         trunk_only_s=round(trunk_s, 4), trunk_only_img_s=round(ips / trunk_s, 1), step_over_trunk=round(trunk_s / s, 3),
                         peak_mem_mb=round(mem.mb, 1), gflop_per_step=round(flops / 1e9, 1), mfu=round(flops / s / (peak * 1e12), 4) if peak else None))
        del rep, tr
        if dev.type == "cuda": torch.cuda.empty_cache()
    best = max(rows, key=lambda r: r["img_s"])
    return dict(rows=rows, batch_per_task=a.paper_batch, step_over_trunk=best["step_over_trunk"], img_s=best["img_s"], pretext_share=best["pretext_share"])


def resume_section(dev, a, peak) -> dict:
    from mtssl_nb.checkpoint import load_checkpoint
    half = 4
    over = [f"device={dev}", f"steps={2 * half}", "log_every=1", f"ckpt_every={half}", "optim.warmup=2", "workers=0"]
    over += ["precision=bf16", "channels_last=true"] if dev.type == "cuda" else ["precision=fp32"]
    preset = "smoke" if a.quick and dev.type == "cpu" else "tiny"
    losses = lambda tr: {r["step"]: {k: v for k, v in r.items() if k.endswith("/loss")} for r in tr.history if r["step"] > half}
    with tempfile.TemporaryDirectory() as d:
        straight = Trainer(load_train_config(preset, over + [f"out_dir={d}/straight"]), progress=False).run()
        straight.close()
        cfg = load_train_config(preset, over + [f"out_dir={d}/paused"])
        first = Trainer(cfg, progress=False).run(until=half)
        first.close()
        saved = load_checkpoint(first.last_ckpt)["rng"][0]
        second = Trainer(cfg, resume=True, progress=False)  # a new trainer, as a new process would build it
        rng_ok = bool(torch.equal(saved["torch"], torch.get_rng_state()))
        if dev.type == "cuda": rng_ok &= bool(len(saved["cuda"]) > 0 and torch.equal(saved["cuda"][dev.index or 0], torch.cuda.get_rng_state(dev)))
        second.run(); second.close()
    want, got = losses(straight), losses(second)
    diffs = [abs(got[s][k] - v) / max(abs(v), 1e-6) for s in want for k, v in want[s].items()]
    tol = 2e-2 if dev.type == "cuda" else 1e-6
    return dict(preset=preset, steps=2 * half, resumed_at=half, precision="bf16" if dev.type == "cuda" else "fp32", rng_restored=rng_ok,
                max_rel_loss_diff=max(diffs), tolerance=tol, ok=rng_ok and max(diffs) <= tol and set(got) == set(want),
                tolerance_why="bf16 keeps 8 significant bits (0.4% a rounding) and cuDNN may pick other kernels in a new trainer" if dev.type == "cuda"
                else "the same fp32 arithmetic on the CPU: equal up to summation order",
                losses_straight=want, losses_resumed=got)


def preset_section(dev, a, peak) -> dict:
    from mtssl_nb.experiment import ALL4, quick_overrides, row_config, run_experiment
    steps = 3 if a.quick else a.preset_steps
    extra = [f"device={dev}"] + (quick_overrides() + ["workers=0"] if a.quick else []) + [f"steps={steps}"]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        res = run_experiment("gpu", out=Path(d) / "experiment", rows=[ALL4], seeds=(0,), extra=extra, progress=False,
                             **(dict(n_train=100, n_test=50) if a.quick else {}))
        cfg = row_config(ALL4, "gpu", Path(d), 0, extra)
    row = res["rows"][ALL4]["0"]
    probes = {spec: [round(x, 3) for x in (p["linear"]["top1"], *p["linear"]["top1_ci"])] for spec, p in row["probes"].items()}
    return dict(row=ALL4, steps=steps, seconds=round(time.perf_counter() - t0, 1), linear_probe_top1_ci=probes, trunk_moved=round(row["moved"], 4),
                overrides=extra, trunk=f"{cfg.trunk.preset}, width {cfg.trunk.width}", batch_per_task={n: t.batch_size for n, t in cfg.tasks.items()},
                precision=cfg.precision, workers=cfg.workers)


def table(res: dict) -> str:
    out = [f"{'section':<8}{'row':<44}{'img/s':>9}{'ratio':>8}{'peak MB':>9}{'GFLOP':>8}{'MFU':>7}"]
    for r in (res["sections"].get("trunk") or {}).get("rows", []):
        mode = "+".join([r["precision"]] + [k for k in ("channels_last", "compile") if r[k]])
        out.append(f"{'trunk':<8}{r['preset'] + ' ' + str(r['input_px']) + 'px b' + str(r['batch']) + ' ' + mode:<44}{r['img_s']:>9.0f}"
                   f"{r.get('vs_tv', ''):>8}{r['peak_mem_mb']:>9.0f}{r['gflop_per_step']:>8.0f}{r['mfu'] if r['mfu'] is not None else '':>7}")
    for r in (res["sections"].get("step") or {}).get("rows", []):
        out.append(f"{'step':<8}{'paper, four tasks, ' + r['mode']:<44}{r['img_s']:>9.0f}{r['step_over_trunk']:>8}{r['peak_mem_mb']:>9.0f}"
                   f"{r['gflop_per_step']:>8.0f}{r['mfu'] if r['mfu'] is not None else '':>7}")
        out.append(f"{'':<8}{'  the trunk alone, the same inputs':<44}{r['trunk_only_img_s']:>9.0f}")
        for n, t in r["per_task"].items():
            label = f"  {n}: {t['images']} images, pretext {t['make_batch_ms']} ms"
            out.append(f"{'':<8}{label:<44}{t['img_s']:>9.0f}")
        out.append(f"{'':<8}  pretext share of the step {r['pretext_share']:.3f}, host-to-device copies {r['data_share']:.3f}")
    if (r := res["sections"].get("resume")) and "ok" in r:
        out.append(f"{'resume':<8}max relative loss difference {r['max_rel_loss_diff']:.2e} (tolerance {r['tolerance']:g}), random state restored: {r['rng_restored']}")
    if (r := res["sections"].get("preset")) and "steps" in r:
        out.append(f"{'preset':<8}gpu preset, {r['row']}, {r['steps']} steps + probes in {r['seconds']:.0f} s; block3 linear probe top-1 [95% interval] {r['linear_probe_top1_ci']}")
    for name, s in res["sections"].items():
        if s.get("error") or s.get("skipped"): out.append(f"{name:<8}{'FAILED: ' + s['error'].splitlines()[-1] if s.get('error') else 'skipped: ' + s['skipped']}")
    for k, t in res["targets"].items():
        out.append(f"target  {k} = {t['value']} (target {t['target']}): {'met' if t['met'] else 'not met' if t['met'] is False else 'not measured'}")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (the GPU if there is one), cuda or cpu")
    p.add_argument("--quick", action="store_true", help="fewer steps (on a CPU: toy sizes, the compiled rows left out)")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                   help="the compiled rows: auto runs them on a GPU only (inductor's CPU code generation takes minutes for a ResNet)")
    p.add_argument("--paper-batch", type=int, default=None, help="images per task in the four-task step (default 64 on a GPU, 2 on a CPU)")
    p.add_argument("--preset-steps", type=int, default=300, help="steps of the gpu preset's short run")
    p.add_argument("--budget", type=float, default=480, help="seconds: a section is skipped when less than it needs is left")
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: looked up by GPU name)")
    p.add_argument("--out", default="runs/bench/gpu.json")
    a = p.parse_args(argv)
    dev = pick_device(a.device)
    gpu = dev.type == "cuda"
    a.compile = a.compile == "on" or (a.compile == "auto" and gpu)
    a.paper_batch = a.paper_batch or (64 if gpu else 2)
    a.iters, a.warmup, a.steps = (20, 3, 10) if gpu and not a.quick else (5, 2, 4) if gpu else (2, 1, 1)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(dev) if gpu else f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} threads"
    peak = a.peak_tflops or (next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None) if gpu else None)
    res = dict(device=name, torch=torch.__version__, cuda=torch.version.cuda, python=platform.python_version(),
               date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), argv=sys.argv[1:] if argv is None else list(argv),
               bf16_peak_tflops=peak, sections={}, targets={})
    print(f"device: {name}; torch {torch.__version__}; bf16 peak {peak or 'n/a'} TFLOP/s; sections {' '.join(a.only)}", flush=True)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    for sec in a.only:
        left = a.budget - (time.perf_counter() - t_start)
        need = MIN_SECONDS["gpu" if gpu else "cpu"][sec]
        if left < need:
            res["sections"][sec] = dict(skipped=f"{left:.0f} s of the {a.budget:.0f} s budget left, the section needs about {need} s")
        else:
            print(f"[{time.perf_counter() - t_start:5.0f} s] {sec} ...", flush=True)
            t0 = time.perf_counter()
            try: res["sections"][sec] = globals()[f"{sec}_section"](dev, a, peak)
            except Exception as e:  # recorded, and the next section still runs: a GPU is lent for minutes
                res["sections"][sec] = dict(error=f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
                print(res["sections"][sec]["error"], file=sys.stderr, flush=True)
            res["sections"][sec]["seconds"] = round(time.perf_counter() - t0, 1)
        tr, st = res["sections"].get("trunk", {}), res["sections"].get("step", {})
        res["targets"] = dict(trunk_vs_tv_compiled=dict(value=tr.get("trunk_vs_tv_compiled"), target=">= 1.0"),
                              step_over_trunk=dict(value=st.get("step_over_trunk"), target=">= 0.85"))
        for t in res["targets"].values(): t["met"] = None if t["value"] is None else t["value"] >= float(t["target"].split()[-1])
        res["seconds"] = round(time.perf_counter() - t_start, 1)
        out.write_text(json.dumps(res, indent=1))  # after every section: a run cut short keeps what it measured
    print(table(res))
    print(f"wrote {out} ({res['seconds']:.0f} s)")
    failed = [s for s, r in res["sections"].items() if r.get("error") or (s == "resume" and r.get("ok") is False)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Forward+backward speed and peak memory of the trunk presets, against torchvision's ResNet as a reference.

    python bench/trunk.py                 # CPU (or the GPU if there is one), a table and runs/bench/trunk.json
    python bench/trunk.py --quick         # fewer rows and iterations
    python bench/trunk.py --device cuda   # on a GPU: fp32, then bf16 + channels_last, then + torch.compile

Each row times a training step's compute (forward, a scalar loss, backward) on random input at a
preset's size: the median of `--iters` steps. `vs_tv` is the row's images/s over that of torchvision's
ResNet with the same depth cut after layer3, measured in the same run with the same settings; its
convolutions have the same shapes, but its strides sit in each block's first unit, so it does ~6% more
FLOPs (see the GFLOP column). `mfu` is model FLOP utilisation of the bf16 rows: FLOPs of the step
(torch's FlopCounterMode) per second over the GPU's dense bf16 peak; null on the CPU and for fp32.
Memory: on a GPU the peak allocated during the timed steps above what was allocated before them; on
the CPU the peak resident memory the first steps added (sampled every ms), so the two are not alike.
"""
from __future__ import annotations

import argparse, json, statistics, threading, time
from pathlib import Path

import torch
from torch import nn

from mtssl_nb.core import pick_device
from mtssl_nb.models.trunk import ResNetV2Trunk

BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "GH200": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0}  # dense; first match wins


class TorchvisionTrunk(nn.Module):
    "torchvision's ResNet-50/101 up to layer3: the reference."
    def __init__(self, preset: str):
        super().__init__()
        import torchvision
        m = getattr(torchvision.models, preset)()
        self.body = nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3)
    def forward(self, x): return self.body(x)


class PeakRSS:
    "Peak resident memory above the starting level while the block runs (Linux /proc; sampled every ms)."
    def __enter__(self):
        self.base = self.peak = self._rss()
        self.run = True
        self.t = threading.Thread(target=self._watch, daemon=True); self.t.start()
        return self
    def __exit__(self, *a):
        self.run = False; self.t.join()
    def _watch(self):
        while self.run:
            self.peak = max(self.peak, self._rss()); time.sleep(0.001)
    @staticmethod
    def _rss() -> int:
        try: return int(Path("/proc/self/statm").read_text().split()[1]) * 4096
        except OSError: return 0
    @property
    def mb(self): return (self.peak - self.base) / 2**20


def step_flops(model, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as fc:
        out = model(x)
        (out.out if hasattr(out, "out") else out).float().mean().backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def bench_row(preset, width, px, batch, device, bf16=False, channels_last=False, compile=False, iters=5, warmup=2, reference=False, peak=None):
    torch.manual_seed(0)
    model = (TorchvisionTrunk(preset) if reference else ResNetV2Trunk(preset=preset, width=width)).to(device).train()
    x = torch.rand(batch, 3, px, px, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last); x = x.contiguous(memory_format=torch.channels_last)
    rss = PeakRSS().__enter__() if device.type == "cpu" else None  # CPU: resident memory the steps add on top of the model and input
    flops = step_flops(model, x)
    run = torch.compile(model) if compile else model
    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = run(x)
            loss = (out.out if hasattr(out, "out") else out).float().mean()
        loss.backward()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup + (3 if compile else 0)): step()
    sync()
    if device.type == "cuda": torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter(); step(); sync(); times.append(time.perf_counter() - t0)
    if rss: rss.__exit__()
    s = statistics.median(times)
    mem = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" else rss.mb
    return dict(preset=("torchvision-" if reference else "") + preset, width=width, input_px=px, batch=batch, device=device.type,
                precision="bf16" if bf16 else "fp32", channels_last=channels_last, compile=compile,
                fwd_bwd_s=round(s, 5), img_s=round(batch / s, 1), peak_mem_mb=round(mem, 1), gflop_per_step=round(flops / 1e9, 1),
                mfu=round(flops / s / (peak * 1e12), 4) if peak and bf16 else None)  # against the bf16 peak: bf16 rows only


def plan(device, quick):
    "Rows: (preset, width, px, batch, settings); a reference row follows each row of a torchvision-shaped preset."
    if device.type == "cpu":
        rows = [("tiny", 0.25, 64, 32), ("small", 0.25, 96, 32), ("small", 1.0, 96, 16), ("resnet50", 1.0, 96, 8), ("resnet101", 1.0, 96, 8), ("resnet101", 1.0, 224, 4)]
        if quick: rows = [rows[0], rows[1], rows[4]]
        return [(*r, dict()) for r in rows]
    fast = dict(bf16=True, channels_last=True)
    rows = [("resnet101", 1.0, 96, 256), ("resnet101", 1.0, 224, 64), ("resnet101", 1.0, 256, 64), ("small", 0.25, 96, 256)]
    if quick: rows = rows[:2]
    out = [(*r, m) for r in rows for m in (dict(), fast)]
    return out + [(*rows[1], dict(fast, compile=True))]  # compiling takes a minute or two a model: one size


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--iters", type=int, default=None)
    p.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak (default: looked up by GPU name)")
    p.add_argument("--out", default="runs/bench/trunk.json")
    a = p.parse_args(argv)
    device = pick_device(a.device)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    peak = a.peak_tflops
    if device.type == "cuda" and peak is None:
        name = torch.cuda.get_device_name(device)
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {dev_name}; torch {torch.__version__}; bf16 peak: {peak or 'n/a'} TFLOP/s")
    iters = a.iters or (3 if device.type == "cpu" else 30)
    bench_row("tiny", 0.25, 32, 2, device, iters=1)  # start torch's runtime (threads, allocator, kernels) before measuring
    rows = []
    hdr = f"{'preset':<22}{'px':>5}{'batch':>6}  {'mode':<22}{'s/step':>9}{'img/s':>9}{'vs_tv':>7}{'peak MB':>10}{'GFLOP':>8}{'mfu':>7}"
    print(hdr); print("-" * len(hdr))
    for preset, width, px, batch, mode in plan(device, a.quick):
        r = bench_row(preset, width, px, batch, device, iters=iters, peak=peak, **mode)
        if preset in ("resnet50", "resnet101") and width == 1.0:
            ref = bench_row(preset, width, px, batch, device, iters=iters, peak=peak, reference=True, **mode)
            r["vs_tv"] = round(r["img_s"] / ref["img_s"], 3)
            rows += [r, ref]
        else: rows.append(r)
        m = "+".join(k for k in ("bf16", "channels_last", "compile") if mode.get(k)) or "fp32 eager"
        for row in rows[-2:] if "vs_tv" in r else rows[-1:]:
            print(f"{row['preset']:<22}{px:>5}{batch:>6}  {m:<22}{row['fwd_bwd_s']:>9.4f}{row['img_s']:>9.1f}{row.get('vs_tv', ''):>7}"
                  f"{row['peak_mem_mb']:>10.1f}{row['gflop_per_step']:>8.1f}{row['mfu'] if row['mfu'] is not None else '':>7}", flush=True)
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

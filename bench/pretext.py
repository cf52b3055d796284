"""Pretext batch generation: the batched tensor path against a per-image reference, in the same run.

    python bench/pretext.py                # CPU (and the GPU when there is one): a table and runs/bench/pretext.json
    python bench/pretext.py --quick        # fewer repeats
    python bench/pretext.py --device cuda  # GPU rows only (the reference always runs on the CPU)

The reference does what the original code did, one image at a time: numpy crops, colour dropping and
normalisation for relative position; scikit-image's `rgb2lab` on the whole image and scikit-learn's
5-nearest-neighbour search for colorization's soft targets. The batched path is `task.make_batch`. Both
start from the same uint8 batch already in memory (on the device for GPU rows), so decoding and loading
are not counted. On the CPU the two alternate, round by round, so that both see the same machine;
img/s come from the median times over `--repeats` rounds after a warm-up, the ratio is the median of the
per-round ratios.

The CPU rows run twice: first with the C library's default allocator, then after
`mtssl_nb.core.keep_cpu_memory()` (glibc keeps freed blocks up to 32 MB for reuse instead of returning
them to the system; `fit_task` does this on the CPU). The row's `allocator` says which.

Exemplar: 2 views of 96 px per 128 px image, every augmentation on; the reference warps each view with
OpenCV, converts it to HSV and back with OpenCV and applies the colour axes with numpy. Motion: 128 px
frames and masks of synthetic clips; the reference warps frame and mask with OpenCV per image.

Settings: relative position with the paper's patches (96 px, gap 48, jitter 7, colour dropping, a third
of the patches downsampled) cut from 398 px images; colorization on 128 px images with targets on a
32x32 grid (out_stride 4), the 313 bins, the rebalancing weights of a prior.

On a GPU each row also times a ResNet-101 (v2, to block3) forward+backward on the batch the task made
(bf16 autocast, channels-last, the task's head included): `share` is the pretext batch's time over it.
"""
from __future__ import annotations

import argparse, json, statistics, time
from pathlib import Path

import torch

from mtssl_nb.core import keep_cpu_memory
from mtssl_nb.tasks.color import Colorization, color_targets_reference
from mtssl_nb.tasks.exemplar import Exemplar, exemplar_reference
from mtssl_nb.tasks.motion import MotionSegmentation, motion_reference
from mtssl_nb.tasks.relpos import RelPos, grid_extent, relpos_reference


def images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    "A uint8 batch of photo crops (the package photos), or smooth random images where they cannot be loaded."
    try:
        from mtssl_nb.data import PhotoPool, image_loader
        return next(iter(image_loader(PhotoPool(max_side=max(512, size)), size=size, batch_size=batch, scale=(0.5, 1.0), seed=seed)))[0]
    except Exception:  # a bare machine: smooth random images (timing hardly depends on content)
        g = torch.Generator().manual_seed(seed)
        low = torch.rand(batch, 3, 8, 8, generator=g)
        return (torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic").clamp(0, 1) * 255).to(torch.uint8)


def timed(fn, repeats: int, sync=lambda: None) -> float:
    "Median seconds of `fn()` over `repeats` runs after one warm-up."
    fn(); sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def timed_pair(fast, ref, repeats: int) -> tuple[float, float, float]:
    "Median seconds of `fast()` and `ref()` timed alternately (so that both see the same machine), and the median of their per-round ratios."
    fast(); ref()
    tf, tr = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); fast(); tf.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); ref(); tr.append(time.perf_counter() - t0)
    return statistics.median(tf), statistics.median(tr), statistics.median(r / f for f, r in zip(tf, tr))


def reference_fn(task, batch):
    if task.name == "relpos":
        def run(): return relpos_reference(batch, task.cfg, None, task.treatment)  # draws per image, with numpy
    elif task.name == "color":
        def run(): return color_targets_reference(batch, task.encoder.bins, task.cfg.out_stride, task.grid(*batch.shape[-2:]))
    elif task.name == "exemplar":
        def run(): return exemplar_reference(batch, task.cfg)  # per image and view: OpenCV warps and HSV, numpy PCA
    else:
        def run(): return motion_reference(*batch, task)  # per image: OpenCV warps of frame and mask, area resize
    return run


def task_input(task, batch: int):
    "The uint8 batch a task starts from: photo crops (relpos: 398 px, others 128 px), or frames and masks of synthetic clips."
    if task.name == "motion":
        from mtssl_nb.video import clip_loader
        frames, masks = next(iter(clip_loader("synthetic", size=128, batch_size=batch, seed=0)))
        return frames, masks.as_subclass(torch.Tensor)
    return images(batch, grid_extent(task.cfg) if task.name == "relpos" else 128)


def model_step_fn(task, tb, device):
    "ResNet-101 v2 (to block3) + the task's head, forward+backward in bf16 autocast, channels-last."
    from mtssl_nb.models.multitask import MultiTaskNet
    from mtssl_nb.models.trunk import ResNetV2Trunk
    trunk = ResNetV2Trunk(preset="resnet101")
    net = MultiTaskNet(trunk, {task.name: task.make_head(trunk.out_channels)}).to(device).to_channels_last()
    def run():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss, _ = task.loss(net(tb), tb)
        loss.backward()
        net.zero_grad(set_to_none=True)
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--device", default="all", help="cpu, cuda, or all (the CPU, then the GPU when there is one)")
    ap.add_argument("--quick", action="store_true", help="3 repeats")
    ap.add_argument("--out", default="runs/bench/pretext.json")
    a = ap.parse_args(argv)
    repeats = 3 if a.quick else a.repeats
    devices = {"all": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []), "cpu": ["cpu"], "cuda": ["cuda"]}[a.device]
    tasks = [RelPos(), Colorization(out_stride=4), Exemplar(), MotionSegmentation()]
    color = tasks[1]
    color.fit_prior([images(a.batch, 128, seed=1)], n_images=a.batch, progress=False)
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads" + (f", {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    inputs = {t.name: task_input(t, a.batch) for t in tasks}
    refs = {t.name: reference_fn(t, inputs[t.name]) for t in tasks}
    t_refs = {}

    def measure(task, device, allocator):
        cpu_batch = inputs[task.name]
        img = tuple(t.to(device) for t in cpu_batch) if isinstance(cpu_batch, tuple) else cpu_batch.to(device)
        g = torch.Generator(device=device).manual_seed(0)
        if device.type == "cpu":  # batched and reference alternate, round by round
            t_fast, t_ref, ratio = timed_pair(lambda: task.make_batch(img, g), refs[task.name], repeats)
            t_refs[task.name] = t_ref
        else:  # the reference is CPU code: its time from the CPU rows, or measured here
            t_ref = t_refs.get(task.name) or timed(refs[task.name], max(1, repeats // 2))
            t_fast = timed(lambda: task.make_batch(img, g), repeats, torch.cuda.synchronize)
            ratio = t_ref / t_fast
        row = dict(task=task.name, device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu", allocator=allocator, batch=a.batch,
                   image_px=(img[0] if isinstance(img, tuple) else img).shape[-1], batched_img_s=round(a.batch / t_fast, 1), reference_img_s=round(a.batch / t_ref, 1), ratio=round(ratio, 1))
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            t_model = timed(model_step_fn(task, task.make_batch(img, g), device), repeats, torch.cuda.synchronize)
            row.update(model_ms=round(t_model * 1e3, 2), pretext_ms=round(t_fast * 1e3, 2), share=round(t_fast / t_model, 3))
        print(f"{row['task']:>7} {row['device'][:22]:>22} ({allocator}): batched {row['batched_img_s']:>9.1f} img/s, reference {row['reference_img_s']:>7.1f} img/s (CPU), "
              f"ratio {row['ratio']:>7.1f}x" + (f", pretext {row['pretext_ms']} ms = {row['share']:.1%} of a ResNet-101 step ({row['model_ms']} ms)" if "share" in row else ""), flush=True)
        return row

    if "cpu" in devices:
        rows += [measure(t, torch.device("cpu"), "default") for t in tasks]
        if keep_cpu_memory(): rows += [measure(t, torch.device("cpu"), "kept") for t in tasks]
        else: print("keep_cpu_memory: not a glibc system, the second CPU rows are left out")
    if "cuda" in devices:
        rows += [measure(t, torch.device("cuda"), "-") for t in tasks]
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print("\n| task | device | allocator | batch | batched img/s | reference img/s | ratio |" + (" share of a ResNet-101 step |" if any("share" in r for r in rows) else ""))
    print("|---|---|---|---|---|---|---|" + ("---|" if any("share" in r for r in rows) else ""))
    for r in rows:
        print(f"| {r['task']} | {r['device']} | {r['allocator']} | {r['batch']} | {r['batched_img_s']} | {r['reference_img_s']} | {r['ratio']}x |" + (f" {r['share']:.1%} |" if "share" in r else (" - |" if any("share" in x for x in rows) else "")))
    print(f"\nwrote {out}")
    return rows


if __name__ == "__main__":
    main()

"""Two gloo processes under torchrun train the same parameters, bit for bit, as one process that computes both ranks' halves of every batch."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtssl_nb.core import derive_seed
from mtssl_nb.distributed import torchrun_command
from mtssl_nb.tasks.exemplar import triplet_loss
from mtssl_nb.train import (TaskStream, build_model, build_tasks, latest_checkpoint, load_train_config, lr_factor, make_optimizers,
                            task_data, task_loader, task_source)

ROOT = Path(__file__).resolve().parents[1]
WORLD, STEPS = 2, 4
SETTINGS = ["log_every=1", f"steps={STEPS}", "optim.warmup=1"]  # on the smoke preset (tiny with batches of 8)


class GatheredEmbeddings(torch.autograd.Function):
    """What `all_gather` does for rank `r` under DDP, played in one process: forward, every rank's embeddings (the others' given as
    values); backward, this rank's rows of its own gradient plus the other ranks' gradients for those rows (a reduce-scatter)."""
    @staticmethod
    def forward(ctx, z, others_before, others_after, extra_grad):
        ctx.rows, ctx.extra = slice(len(others_before), len(others_before) + len(z)), extra_grad
        return torch.cat([others_before, z, others_after])

    @staticmethod
    def backward(ctx, g):
        return g[ctx.rows] + ctx.extra[ctx.rows], None, None, None


def reference(cfg):
    """One process playing both ranks, step for step as DDP computes: each rank's batch through its own forward and backward
    (BatchNorm statistics per rank), exemplar negatives from both ranks' embeddings, then the ranks' gradients averaged."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process: the same kernels, so the same rounding
    try: return _reference(cfg)
    finally: torch.set_num_threads(threads)


def _reference(cfg):
    tasks = build_tasks(cfg, WORLD)
    srcs = {n: task_source(cfg.tasks[n], t, cfg.seed, task_data(cfg, n, t)) for n, t in tasks.items()}
    for n, t in tasks.items(): t.prepare(iter(TaskStream(task_loader(cfg.tasks[n], t, srcs[n], 0, 1, derive_seed(cfg.seed, "prepare")))), progress=False)
    streams = {(n, r): iter(TaskStream(task_loader(cfg.tasks[n], t, srcs[n], r, WORLD, cfg.seed))) for n, t in tasks.items() for r in range(WORLD)}
    net = build_model(cfg, tasks).train()
    opts = make_optimizers(cfg, net)
    groups = [list(tasks)] if cfg.optim.mode == "sum" else [[n] for n in tasks]

    def rank_loss(names, tbs, r, other_z, extra):
        "Rank r's loss for the tasks `names`, as the trainer writes it."
        preds = net({n: tbs[n][r] for n in names})
        total = 0.0
        for n in names:
            pred = preds[n].float()
            if n == "exemplar":  # the gather: the other ranks' embeddings, and their gradients for this rank's rows
                z = GatheredEmbeddings.apply(pred, torch.cat(other_z[:r]) if r else pred[:0], torch.cat(other_z[r + 1:]) if r + 1 < WORLD else pred[:0], extra[r])
                t = tasks[n]
                loss = triplet_loss(z, t.cfg.margin, t.cfg.mining, slice(r * len(pred), (r + 1) * len(pred)))[0]
            else: loss = tasks[n].loss(pred, tbs[n][r])[0]
            total = total + cfg.tasks[n].weight * loss
        if net.mixer is not None:
            total = total + cfg.lasso_lambda * net.mixer.penalty(None if cfg.optim.mode == "sum" else names[:1])
        return total

    for step in range(cfg.steps):
        tbs = {n: [t.make_batch(next(streams[n, r]), torch.Generator().manual_seed(derive_seed(cfg.seed, "task", n, r, step))) for r in range(WORLD)]
               for n, t in tasks.items()}
        for names in groups:
            zs, extra = [None] * WORLD, [0] * WORLD
            if "exemplar" in names:  # every rank's embeddings and the gradient each rank's loss sends to all of them
                with torch.no_grad(): zs = [net({"exemplar": tbs["exemplar"][r]})["exemplar"].float() for r in range(WORLD)]
                z_all, t = torch.cat(zs).requires_grad_(), tasks["exemplar"]
                B = len(zs[0])
                gs = [torch.autograd.grad(cfg.tasks["exemplar"].weight * triplet_loss(z_all, t.cfg.margin, t.cfg.mining, slice(r * B, (r + 1) * B))[0], z_all)[0]
                      for r in range(WORLD)]
                extra = [sum(g for q, g in enumerate(gs) if q != r) for r in range(WORLD)]
            grads = []
            for r in range(WORLD):
                net.zero_grad(set_to_none=True)
                rank_loss(names, tbs, r, zs, extra).backward()
                grads.append({k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None})
            opt = opts["sum" if cfg.optim.mode == "sum" else names[0]]
            for k, p in net.named_parameters():  # DDP: each rank's gradient divided by the world size, then summed
                p.grad = sum(g[k] * (1 / WORLD) for g in grads) if k in grads[0] else None
            params = [q for g in opt.param_groups for q in g["params"] if q.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.clip)
            for g in opt.param_groups: g["lr"] = g["base_lr"] * lr_factor(cfg.optim, step, cfg.steps)
            opt.step()
    return net


@pytest.mark.parametrize("extra", [["optim.mode=per_task_rmsprop", "lasso=true"], ["optim.mode=sum"]], ids=["per_task_rmsprop+lasso", "sum"])
def test_two_processes_match_one_process_reference(tmp_path, extra):
    args = ["--config", "smoke", f"out_dir={tmp_path}", *SETTINGS, *extra, "--quiet"]
    r = subprocess.run(torchrun_command(args, WORLD), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    path, state = latest_checkpoint(tmp_path / "checkpoints")
    assert state["step"] == STEPS and state["world"] == WORLD and len(state["rng"]) == WORLD
    net = reference(load_train_config("smoke", [f"out_dir={tmp_path}/ref", *SETTINGS, *extra]))
    got = state["model"]
    differ = [k for k, p in net.named_parameters() if not torch.equal(got[k], p.detach())]
    assert differ == []  # bit for bit: the same arithmetic in the same order (ReLU networks amplify any rounding difference)
    # and the processes did train: every parameter group moved away from its start
    start = build_model(load_train_config("smoke", [*SETTINGS, *extra]), build_tasks(load_train_config("smoke", [*SETTINGS, *extra]), WORLD))
    assert all(not torch.equal(got[k], p) for k, p in start.named_parameters() if k.endswith("conv1.weight"))

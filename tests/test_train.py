"""The trainer: the two optimiser modes, resuming, faults (kill -9, SIGTERM, damaged checkpoints, non-finite losses), config errors, logs."""
import csv
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mtssl_nb.core import ConfigError, TaskBatch
from mtssl_nb.tasks.core import PretextTask, register_task
from mtssl_nb.train import (CheckpointError, Trainer, TrainingDiverged, checkpoint_files, latest_checkpoint, load_checkpoint,
                            load_train_config, read_metrics)

ROOT = Path(__file__).resolve().parents[1]
# the smoke preset (tiny with batches of 8): a few seconds for a handful of steps on two cores
SMALL = ["log_every=1", "optim.warmup=0"]


def config(out, *overrides):
    return load_train_config("smoke", [f"out_dir={out}", *SMALL, *overrides])


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mtssl_nb.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT, **kw)


def losses(rows):
    return [{k: v for k, v in r.items() if k.endswith("/loss")} for r in rows]


# ---- the two ways of combining tasks

def trunk_update(out, *overrides):
    "The change of the trunk's parameters in one step (the same initial trunk in every run)."
    tr = Trainer(config(out, "steps=1", *overrides), progress=False)
    before = torch.cat([p.detach().flatten().clone() for p in tr.net.trunk.parameters()])
    tr.run()
    return torch.cat([p.detach().flatten() for p in tr.net.trunk.parameters()]) - before


def test_loss_scale_dominates_sum_but_not_per_task_rmsprop(tmp_path):
    two = "use=[relpos,color]"
    d = {}
    for mode in ("sum", "per_task_rmsprop"):
        for w in (1, 100):
            d[mode, w] = trunk_update(tmp_path / f"{mode}{w}", two, f"optim.mode={mode}", f"tasks.color.weight={w}")
    color_alone = trunk_update(tmp_path / "color", "use=[color]")
    cos = lambda a, b: float(F.cosine_similarity(a, b, dim=0))
    # sum: the 100x loss takes over the trunk's update...
    assert cos(d["sum", 100], color_alone) > 0.8 > cos(d["sum", 1], color_alone) + 0.1  # measured 0.88 against 0.04
    assert not torch.allclose(d["sum", 100], d["sum", 1], atol=1e-6)
    # ...per-task RMSProp normalises each task's gradient, so the loss scale does not matter
    a, b = d["per_task_rmsprop", 100], d["per_task_rmsprop", 1]
    assert (a - b).norm() < 0.01 * b.norm()  # equal but for parameters whose gradient is near RMSProp's eps
    assert (d["sum", 100] - d["sum", 1]).norm() > 0.5 * d["sum", 1].norm()
    assert cos(d["per_task_rmsprop", 100], color_alone) < 0.8  # relative position still has its say


def test_larger_lasso_lambda_gives_sparser_rows(tmp_path):
    "On a small run the penalty's weight means something: without it the colour row spreads over block3's units, with it the row stays on one."
    spread = {}
    for lam in (0.0, 0.3):
        tr = Trainer(config(tmp_path / f"lam{lam}", "lasso=true", f"lasso_lambda={lam}", "steps=20", "use=[color]"), progress=False)
        tr.run()
        spread[lam] = float(tr.net.mixer.penalty(["color"]).detach())  # |a|_1 / |a|_2 - 1: 0 for one unit
        tr.close()
    assert spread[0.0] > 0.02 and spread[0.3] < 0.25 * spread[0.0], spread


# ---- resuming

def test_resume_gives_the_losses_of_an_uninterrupted_run(tmp_path):
    whole = Trainer(config(tmp_path / "whole", "steps=6"), progress=False).run()
    first = Trainer(config(tmp_path / "parts", "steps=6"), progress=False).run(until=3)  # stops with a checkpoint at step 3
    rest = Trainer(config(tmp_path / "parts", "steps=6"), resume=True, progress=False).run()
    assert rest.start == 3
    assert losses(first.history + rest.history) == losses(whole.history)  # every step's losses, exactly
    for a, b in zip(whole.net.state_dict().values(), rest.net.state_dict().values()): assert torch.equal(a, b)
    assert [r["step"] for r in read_metrics(tmp_path / "parts")] == list(range(1, 7))  # one log, no repeated steps


def test_a_run_folder_is_never_overwritten(tmp_path):
    Trainer(config(tmp_path, "steps=2", "ckpt_every=2"), progress=False).run()
    with pytest.raises(ConfigError, match="already holds a run .*--resume"):
        Trainer(config(tmp_path, "steps=4"), progress=False)
    with pytest.raises(ConfigError, match="already at step 2 of steps=2; raise steps"):
        Trainer(config(tmp_path, "steps=2"), resume=True, progress=False)


def wait_for(cond, proc, timeout=120):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None: raise AssertionError(f"the run ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.time() - t0 > timeout: proc.kill(); raise AssertionError("timed out")
        time.sleep(0.05)


def start_run(out, *overrides):
    return subprocess.Popen([sys.executable, "-m", "mtssl_nb.cli", "train", "--config", "smoke", f"out_dir={out}", *SMALL, *overrides, "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_kill_9_then_resume(tmp_path):
    "Also the run folder's lock: a second writer is refused while the first runs, and kill -9 leaves nothing that blocks the resume."
    out = tmp_path / "run"
    proc = start_run(out, "steps=1000", "ckpt_every=2", "optim.schedule=constant")  # the rate must not depend on steps, which the resume changes
    wait_for(lambda: len(checkpoint_files(out / "checkpoints")) >= 2, proc)
    second = cli("train", "--resume", out, "steps=1000", "--quiet")
    assert second.returncode == 2 and f"run folder {out} is being written by process pid {proc.pid}" in second.stderr, second.stderr
    assert proc.poll() is None  # the first run goes on, untouched
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the checkpoints on disk must be whole anyway
    proc.wait()
    step = latest_checkpoint(out / "checkpoints")[1]["step"]  # the newest on disk is whole (a kill mid-write leaves only a temporary file)
    assert step >= 4
    r = cli("train", "--resume", out, f"steps={step + 3}", "--quiet")
    assert r.returncode == 0, r.stderr
    assert not list((out / "checkpoints").glob(".*"))  # the resumed run cleared any interrupted write
    rows = read_metrics(out)
    assert [x["step"] for x in rows] == list(range(1, step + 4))  # steps past the checkpoint, logged before the kill, were dropped
    ref = Trainer(config(tmp_path / "ref", f"steps={step + 3}", "ckpt_every=1000", "optim.schedule=constant"), progress=False).run()
    assert losses(rows) == losses(ref.history)  # the interrupted and resumed run is the uninterrupted one


def test_sigterm_saves_a_checkpoint_and_exits(tmp_path):
    out = tmp_path / "run"
    proc = start_run(out, "steps=1000", "ckpt_every=1000")
    wait_for(lambda: (out / "metrics.csv").is_file() and len((out / "metrics.csv").read_text().splitlines()) >= 3, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM at step" in err and "continue with --resume" in err
    (ckpt,) = checkpoint_files(out / "checkpoints")
    state = load_checkpoint(ckpt)
    assert 2 <= state["step"] < 1000 and "received SIGTERM" in (out / "events.log").read_text()


def test_damaged_checkpoint_is_detected_and_resume_falls_back(tmp_path):
    out = tmp_path / "run"
    Trainer(config(out, "steps=4", "ckpt_every=2"), progress=False).run()
    newest = out / "checkpoints" / "step_0000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    with pytest.raises(CheckpointError, match="step_0000004.pt is truncated or damaged"):
        load_checkpoint(newest)
    with pytest.warns(UserWarning, match="falling back to the previous checkpoint"):
        tr = Trainer(config(out, "steps=5", "ckpt_every=2"), resume=True, progress=False)
    assert tr.start == 2
    for p in checkpoint_files(out / "checkpoints"): p.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="no checkpoint in .* can be read"):
        Trainer(config(out, "steps=5"), resume=True, progress=False)


def test_last_k_checkpoints_kept(tmp_path):
    Trainer(config(tmp_path, "steps=5", "ckpt_every=1", "keep_ckpts=2"), progress=False).run()
    assert [p.name for p in checkpoint_files(tmp_path / "checkpoints")] == ["step_0000004.pt", "step_0000005.pt"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("*.b2")) == ["step_0000004.pt.b2", "step_0000005.pt.b2"]


# ---- non-finite losses

@register_task
class Flaky(PretextTask):
    "A test task: mean brightness regression whose loss turns NaN at the steps listed in `nan_at` (by the count of its batches)."
    name = "flaky"
    calls = 0
    nan_at: set = set()

    def make_batch(self, batch, generator=None):
        img = batch[0]
        return TaskBatch(self.name, img.float() / 255, img.float().mean((1, 2, 3)) / 255)

    def make_head(self, in_channels):
        return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(in_channels, 1))

    def loss(self, pred, tb):
        Flaky.calls += 1
        loss = F.mse_loss(pred[:, 0], tb.y)
        if Flaky.calls in Flaky.nan_at: loss = loss * math.nan
        return loss, {"loss": loss.detach()}


def test_nan_step_is_skipped_and_too_many_stop_the_run(tmp_path):
    over = ("tasks.flaky.size=32", "tasks.flaky.batch_size=8", "use=[flaky,color]")
    Flaky.calls, Flaky.nan_at = 0, {3}
    tr = Trainer(config(tmp_path / "one", "steps=5", *over), progress=False)
    before = [p.detach().clone() for p in tr.net.heads["flaky"].parameters()]
    with pytest.warns(RuntimeWarning, match="step 3: non-finite loss or gradient in flaky: update skipped"):
        tr.run()
    assert tr.step == 5 and all(torch.isfinite(p).all() for p in tr.net.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.net.heads["flaky"].parameters()))
    Flaky.calls, Flaky.nan_at = 0, set(range(2, 100))
    tr = Trainer(config(tmp_path / "many", "steps=20", "max_bad_steps=3", *over), progress=False)
    with pytest.warns(RuntimeWarning), pytest.raises(TrainingDiverged, match="3 steps in a row had a non-finite loss"):
        tr.run()
    assert tr.step == 4 and all(torch.isfinite(p).all() for p in tr.net.parameters())


# ---- config errors come first

@pytest.mark.parametrize("override, message", [
    ("tasks.relpos.size=64", "tasks.relpos.size is 64 px, but relpos with its settings needs images of at least 102 px"),
    ("tasks.exemplar.batch_size=1", "tasks.exemplar.batch_size is 1, but exemplar needs at least 2 images"),
    ("use=[relpos,jigsaw]", "use names 'jigsaw', which is not among the configured tasks"),
    ("tasks.jigsaw.size=64", "no pretext task named 'jigsaw'"),
    ("tasks.color.settings.bin=gamut", "did you mean 'tasks.color.settings.bins'?"),
    ("optim.mode=async", "optim.mode 'async' is not known"),
    ("tasks.motion.data=no/such/clips", "clip folder no/such/clips does not exist"),
])
def test_bad_configs_fail_before_any_work(tmp_path, override, message, capsys, monkeypatch):
    # `mtssl train`'s own entry point, in this process (a new process per case only added its start-up: ~7 s each);
    # test_config_files_and_presets runs the command in a process of its own
    from mtssl_nb.cli import main
    monkeypatch.chdir(ROOT)  # relative data paths read as the command line reads them
    out = tmp_path / "run"
    assert main(["train", "--config", "smoke", f"out_dir={out}", override]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists(), err  # one line, nothing written


def test_config_files_and_presets(tmp_path):
    r = cli("train", "--config", "no_such_preset")
    assert r.returncode == 2 and "presets: " in r.stderr and "tiny" in r.stderr
    from mtssl_nb.train import build_tasks
    for p in sorted((ROOT / "mtssl_nb" / "configs").rglob("*.yaml")):
        cfg = load_train_config(p)  # every preset parses and names known tasks
        if cfg.images == "required":  # a preset for the user's photos asks for them, and builds once given a folder
            with pytest.raises(ConfigError, match="give images=folder:PATH"): build_tasks(cfg, world=1)
            cfg = load_train_config(p, ["images=folder:your/photos"])
        build_tasks(cfg, world=1)


# ---- logs

def test_logs_are_readable_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    tr = Trainer(config(tmp_path, "steps=3", "lasso=true"), progress=False).run()
    acc = EventAccumulator(str(tmp_path / "tb")).Reload()
    tags = acc.Tags()["scalars"]
    assert {"relpos/loss", "color/loss", "exemplar/loss", "motion/loss", "motion/iou", "img_s"} <= set(tags)
    assert [e.step for e in acc.Scalars("color/loss")] == [1, 2, 3]
    assert abs(acc.Scalars("color/loss")[-1].value - tr.history[-1]["color/loss"]) < 1e-5
    with open(tmp_path / "lasso.csv") as f: rows = list(csv.DictReader(f))
    assert {r["task"] for r in rows} == {"relpos", "color", "exemplar", "motion"} and len(rows) == 12
    from mtssl_nb.core import config_to_dict, load_config
    from mtssl_nb.train import TrainConfig
    assert config_to_dict(load_config(TrainConfig, tmp_path / "config.yaml")) == config_to_dict(tr.cfg) and tr.cfg.lasso


def test_sigint_in_process_saves_and_restores_the_handler(tmp_path):
    "Ctrl-C in a notebook (SIGINT to the kernel's main thread): the step finishes, a checkpoint is saved, the old handler is back."
    import threading
    from mtssl_nb.train import TrainingStopped
    old = signal.getsignal(signal.SIGINT)
    tr = Trainer(config(tmp_path, "steps=1000", "ckpt_every=1000"), progress=False,
                 callbacks=[lambda row: row["step"] == 3 and threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT)).start()])
    with pytest.raises(TrainingStopped, match="stopped by SIGINT at step") as e:
        tr.run()
    assert e.value.signum == signal.SIGINT and e.value.checkpoint.is_file() and load_checkpoint(e.value.checkpoint)["step"] == tr.step >= 3
    assert signal.getsignal(signal.SIGINT) is old


def test_resume_keeps_to_its_own_folder_and_sets_later_checkpoints_aside(tmp_path):
    run = tmp_path / "run"
    Trainer(config(run, "steps=6", "ckpt_every=2", "keep_ckpts=5"), progress=False).run()
    with pytest.raises(ConfigError, match="a run continues in its own folder; set out_dir="):
        Trainer(config(tmp_path / "elsewhere", "steps=8"), resume=run, progress=False)
    # resuming an older checkpoint: the later ones (another future of the run) are renamed, not found, not lost
    tr = Trainer(config(run, "steps=8", "ckpt_every=2", "keep_ckpts=5"), resume=run / "checkpoints" / "step_0000002.pt", progress=False)
    assert tr.start == 2 and sorted(p.name for p in (run / "checkpoints").glob("*.stale")) == ["step_0000004.pt.stale", "step_0000006.pt.stale"]
    tr.run(until=3)
    assert [p.name for p in checkpoint_files(run / "checkpoints")] == ["step_0000002.pt", "step_0000003.pt"]
    # from the command line, a run folder resumes there whatever out_dir its config names; `--resume key=value` is an override
    moved = tmp_path / "moved"
    run.rename(moved)
    r = cli("train", "--resume", moved, "steps=4", "--quiet")
    assert r.returncode == 0 and f"in {moved}" in r.stdout, r.stderr
    r = cli("train", "--config", "smoke", f"out_dir={moved}", *SMALL, "--resume", "steps=5", "--quiet")
    assert r.returncode == 0 and "to step 5" in r.stdout, r.stderr


def test_resume_applies_new_settings_and_refuses_another_mode(tmp_path):
    Trainer(config(tmp_path, "steps=2", "optim.lr=1e-3"), progress=False).run()
    tr = Trainer(config(tmp_path, "steps=4", "optim.lr=5e-4", "optim.momentum=0.5"), resume=True, progress=False)
    assert {(g["base_lr"], g["momentum"]) for o in tr.opts.values() for g in o.param_groups} == {(5e-4, 0.5)}
    with pytest.raises(ConfigError, match="optim.mode and the tasks"):
        Trainer(config(tmp_path, "steps=4", "optim.mode=sum"), resume=True, progress=False)


def test_log_rows_survive_a_stop_between_them(tmp_path):
    "A run paused between two log rows continues its averages: its rows equal an uninterrupted run's."
    whole = Trainer(config(tmp_path / "whole", "steps=6", "log_every=3"), progress=False).run()
    Trainer(config(tmp_path / "parts", "steps=6", "log_every=3"), progress=False).run(until=4)  # a row at 3; the pause at 4 keeps its sums in the checkpoint
    rest = Trainer(config(tmp_path / "parts", "steps=6", "log_every=3"), resume=True, progress=False).run()
    assert losses(rest.history) == losses(whole.history[-1:])  # the row at 6 averages steps 4-6, as the uninterrupted one


def test_a_skipped_step_leaves_batchnorm_statistics_alone(tmp_path):
    Flaky.calls, Flaky.nan_at = 0, {2}
    tr = Trainer(config(tmp_path, "steps=2", "tasks.flaky.size=32", "tasks.flaky.batch_size=8", "use=[flaky]", "optim.mode=sum"), progress=False)
    tr.run(until=1)
    before = {k: v.clone() for k, v in tr.net.state_dict().items() if "running" in k}
    with pytest.warns(RuntimeWarning, match="step 2: non-finite"):
        tr.run()
    assert all(torch.equal(before[k], v) for k, v in tr.net.state_dict().items() if "running" in k)

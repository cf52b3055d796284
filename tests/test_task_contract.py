"""The `PretextTask` contract carries a task: one defined only here (the course's rotation task) trains, is evaluated, reported and
monitored by the toolkit as it is. Its headline metric has a name no built-in task uses, so each part is seen reading the class."""
import inspect
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtssl_nb.core import TaskBatch
from mtssl_nb.eval.core import evaluate_run, results_table
from mtssl_nb.report import curves_figure, write_report
from mtssl_nb.tasks.core import TASKS, PretextTask, images_of, register_task
from mtssl_nb.runs import load_run
from mtssl_nb.train import load_train_config, read_metrics, train
from mtssl_nb.widgets.monitor import TrainingMonitor, main_metric


class Rotation(PretextTask):
    "Which of four quarter turns an image was given."
    name, metric = "rotation", "turn_acc"
    smoke, smoke_size = {}, 32
    quality_labels = {"turn_acc": "quarter-turn accuracy"}

    def make_batch(self, batch, generator=None) -> TaskBatch:
        img = images_of(batch, self.name, 8)
        turns = torch.randint(0, 4, (len(img),), generator=generator).to(img.device)
        every = torch.stack([torch.rot90(img, k, dims=(-2, -1)) for k in range(4)])  # (4, B, 3, S, S)
        return TaskBatch(self.name, every[turns, torch.arange(len(img))].float() / 255, turns)

    def make_head(self, in_channels: int) -> nn.Module:
        return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, 4))

    def loss(self, pred, tb: TaskBatch):
        loss = F.cross_entropy(pred.float(), tb.y)
        return loss, {"loss": loss.detach(), "turn_acc": (pred.argmax(1) == tb.y).float().mean().detach()}

    def show(self, tb: TaskBatch, pred=None, n: int = 4):
        fig, axs = plt.subplots(1, n, figsize=(2 * n, 2))
        for i, ax in enumerate(axs):
            ax.imshow(tb.x[i].permute(1, 2, 0).cpu()); ax.set_title(f"{90 * int(tb.y[i])} deg"); ax.axis("off")
        return fig

    @torch.no_grad()
    def quality(self, net, data, size: int = 64, device="cpu") -> dict:
        net.eval()
        tb = self.make_batch(data.to(device), torch.Generator().manual_seed(0))
        return {"turn_acc": float((net(tb).argmax(1) == tb.y).float().mean()), "images": len(tb)}


@pytest.fixture
def rotation():
    register_task(Rotation)
    yield Rotation
    TASKS.pop("rotation", None)


def test_a_task_defined_in_a_test_trains_evaluates_reports_and_monitors(rotation, tmp_path):
    run_dir = tmp_path / "run"
    cfg = load_train_config("smoke", [f"out_dir={run_dir}", "use=[rotation]", "tasks.rotation.size=32", "tasks.rotation.batch_size=8"])
    tr = train(cfg, progress=False)
    assert [r["step"] for r in tr.history] == [2, 4] and all("rotation/turn_acc" in r for r in tr.history)

    run = load_run(run_dir)  # rebuilt from its checkpoint through the registry
    res = evaluate_run(run, ("linear", "heads"), ("digits",), n_train=60, n_test=40, size=32, progress=None)
    assert set(res["probes"]["digits"]) == {"trained", "random init"}
    assert set(res["heads"]) == {"rotation"} and 0 <= res["heads"]["rotation"]["turn_acc"] <= 1 and res["heads"]["rotation"]["images"] == 512
    assert "rotation head on held-out package photos: quarter-turn accuracy" in results_table(res)

    page = write_report(run, res, tmp_path / "report").read_text()
    assert "quarter-turn accuracy" in page and "rotation" in page
    fig = curves_figure(read_metrics(run_dir), ["rotation"])
    assert fig.axes[-1].get_ylabel() == "turn_acc"  # the curve beside the loss is the task's own headline metric
    plt.close("all")

    mon = TrainingMonitor.for_run(run_dir)
    assert main_metric(mon.rows[-1], "rotation") == "rotation/turn_acc"
    assert list(mon._trace("rotation metric").y) == [r["rotation/turn_acc"] for r in read_metrics(run_dir)]


def test_a_task_in_a_file_of_its_own_is_trained_evaluated_exported_and_resumed_by_the_command(tmp_path):
    """The course's rotation task as a file outside the package, named by `task_modules`: each `mtssl` command is a new process that
    finds the task from the run's own config (train, eval, export, resume), and a run whose module is gone names it."""
    course = tmp_path / "course"
    course.mkdir()
    header = ("import matplotlib.pyplot as plt\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
              "from mtssl_nb.core import TaskBatch\nfrom mtssl_nb.tasks.core import PretextTask, images_of, register_task\n\n@register_task\n")
    (course / "rotation_task.py").write_text(header + inspect.getsource(Rotation))
    mtssl = [str(Path(sys.executable).with_name("mtssl"))]  # the console script: the working folder is not on its path
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}

    def cli(*args, cwd=course, ok=True):
        r = subprocess.run([*mtssl, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
        assert (r.returncode == 0) == ok, r.stdout + r.stderr
        return r.stdout + r.stderr

    run = tmp_path / "run"
    setting = ["task_modules=[rotation_task]", "use=[rotation]", "tasks.rotation.size=32", "tasks.rotation.batch_size=8", "steps=2", "workers=0"]
    out = cli("train", "--config", "smoke", f"out_dir={run}", *setting, "--quiet")  # a dotted name, found in the working folder
    assert "trained rotation to step 2" in out and "task_modules:\n- rotation_task" in (run / "config.yaml").read_text()
    out = cli("eval", "--checkpoint", str(run), "--probe", "heads", "--quiet")
    assert "rotation head on held-out package photos: quarter-turn accuracy" in out
    cli("export", str(run), str(tmp_path / "export"))
    assert "rotation head" in cli("eval", "--checkpoint", str(tmp_path / "export"), "--probe", "heads", "--quiet")
    assert "to step 4" in cli("train", "--resume", str(run), "steps=4", "--quiet")
    gone = cli("eval", "--checkpoint", str(run), "--probe", "heads", cwd=tmp_path, ok=False)  # elsewhere: the module is not found
    assert "task_modules names 'rotation_task', which cannot be imported here" in gone

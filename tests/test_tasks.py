"""The PretextTask contract, checked for every built-in task: batches, heads, losses, pictures, seeds, errors."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch

from mtssl_nb.core import ConfigError, TaskBatch
from mtssl_nb.data import PhotoPool, image_loader
from mtssl_nb.models.lasso import LassoMixer
from mtssl_nb.models.multitask import MultiTaskNet
from mtssl_nb.models.trunk import ResNetV2Trunk
from mtssl_nb.harmonize import HARMONIZE_MODES, Harmonizer
from mtssl_nb.tasks.core import TASKS, make_task, task_class, task_names
from mtssl_nb.video import clip_loader

# every task of the registry, at the small settings its class gives for quick tests (`smoke`, `smoke_size`)
NAMES = task_names()
SMALL = {n: task_class(n).smoke for n in NAMES}
SIZE = {n: task_class(n).smoke_size for n in NAMES}


@pytest.fixture(scope="module")
def pool():
    return PhotoPool(max_side=160)


def batch_for(name, pool, n=4, seed=0):
    "Images and labels; frames and masks of synthetic clips for motion."
    if task_class(name).data_kind == "clips": return next(iter(clip_loader("synthetic", size=SIZE[name], batch_size=n, seed=seed)))
    return next(iter(image_loader(pool, size=SIZE[name], batch_size=n, seed=seed)))


def test_registry_lists_the_builtin_tasks():
    assert {"relpos", "color", "exemplar", "motion"} <= set(task_names()) and list(TASKS) == task_names()
    with pytest.raises(ConfigError, match="did you mean 'relpos'"):
        make_task("relpso")


@pytest.mark.parametrize("name", NAMES)
def test_contract_end_to_end(name, pool):
    "make_batch -> MultiTaskNet (with and without the lasso) -> loss -> backward reaches the trunk; show draws a figure."
    task = make_task(name, **SMALL[name])
    images, labels = batch_for(name, pool)
    tb = task.make_batch((images, labels), torch.Generator().manual_seed(0))
    assert isinstance(tb, TaskBatch) and tb.task == name and len(tb) == 4
    assert tb.x.dtype == torch.float32 and tb.x.shape[-3] == 3
    for lasso in (False, True):
        trunk = ResNetV2Trunk(preset="small", width=0.25)
        mixer = LassoMixer([name], trunk.n_units) if lasso else None
        net = MultiTaskNet(trunk, {name: task.make_head(trunk.out_channels)}, mixer)
        pred = net(tb)
        loss, metrics = task.loss(pred, tb)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert "loss" in metrics and all(torch.is_tensor(v) and v.ndim == 0 and not v.requires_grad for v in metrics.values())
        loss.backward()
        assert trunk.conv1.weight.grad.abs().sum() > 0
    fig = task.show(tb, pred.detach(), n=2)
    assert len(fig.axes) >= 4
    plt.close("all")


@pytest.mark.parametrize("name", NAMES)
def test_batches_follow_the_generator(name, pool):
    task = make_task(name, **SMALL[name])
    batch = batch_for(name, pool)
    a, b = (task.make_batch(batch, torch.Generator().manual_seed(7)) for _ in range(2))
    c = task.make_batch(batch, torch.Generator().manual_seed(8))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    if name != "color":  # colorization has no randomness of its own
        assert not torch.equal(a.x, c.x)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_named(name, pool):
    task = make_task(name, **SMALL[name])
    images, second = batch_for(name, pool)  # labels, or masks for motion
    with pytest.raises(ValueError, match=f"{name}: expected uint8 images"):
        task.make_batch((images.float(), second))
    small = (images[:, :, :8, :8], second[..., :8, :8] if second.ndim == 4 else second)
    with pytest.raises(ValueError, match=f"{name}: images of 8x8 px are too small; it needs at least"):
        task.make_batch(small)
    with pytest.raises(ConfigError, match=f"unknown setting '{name}.nope'"):
        make_task(name, nope=1)


def test_state_round_trip(pool):
    "The colour prior travels in the task's state (what a run saves besides the settings)."
    col = make_task("color")
    col.fit_prior([batch_for("color", pool, n=8)[0]], n_images=8, progress=False)
    other = make_task("color")
    other.load_state(col.state())
    assert torch.allclose(other.weights("cpu"), col.weights("cpu"))
    assert not torch.allclose(other.weights("cpu"), torch.ones(313))


def test_harmonize_paper_mode_makes_relpos_gray(pool):
    rp = make_task("relpos", harmonize="paper", **SMALL["relpos"])
    col = make_task("color", harmonize="paper")
    assert rp.gray_input and not col.gray_input  # colorization's input is gray by nature
    tb = rp.make_batch(batch_for("relpos", pool)[0], torch.Generator().manual_seed(0))
    assert tb.info["gray"] and torch.equal(tb.x[:, :, 0], tb.x[:, :, 1])


@pytest.mark.parametrize("mode", HARMONIZE_MODES)
@pytest.mark.parametrize("name", NAMES)
def test_harmonization_is_the_tasks_own(name, mode, pool):
    "The one harmonization path: a batch is gray exactly when the mode says so for its task (colorization's input is gray by nature)."
    task = make_task(name, harmonize=mode, **SMALL[name])
    tb = task.make_batch(batch_for(name, pool), torch.Generator().manual_seed(0))
    x = tb.x.reshape(-1, *tb.x.shape[-3:])
    gray = torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    want = mode == "all_gray" or (mode == "paper" and name == "relpos")  # the paper gives relative position colorization's gray input
    assert gray == (name == "color" or want), (name, mode)
    assert task.gray_input == want == Harmonizer(mode).makes_gray(task)


@pytest.mark.parametrize("name", NAMES)
def test_contract_attributes(name):
    "What the rest of the toolkit reads from a task class is there and consistent."
    cls = task_class(name)
    assert cls.data_kind in ("images", "clips") and cls.metric and isinstance(cls.smoke, dict) and cls.smoke_size >= 1
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in cls.quality_labels.items())
    assert make_task(name, **cls.smoke).min_size() <= cls.smoke_size  # the smoke settings fit their own crop size


def test_headline_metrics_come_from_the_classes():
    from mtssl_nb.tasks.core import headline_metric
    assert [headline_metric(n) for n in ("relpos", "color", "exemplar", "motion", "no-such-task")] == ["acc", "acc", "acc", "iou", None]

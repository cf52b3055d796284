"""The authors' kind of checkpoint (a TF-slim ResNet-v2) everywhere a trunk is used, and exported weights on the command line.

The checkpoint is the fixture TensorFlow wrote (tests/fixtures/make_tf_resnet.py): the `small` trunk at width 1/8."""
import json, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtssl_nb.config import ConfigError
from mtssl_nb.runs import from_pretrained
from mtssl_nb.models.slim import trunk_from_tf_checkpoint
from mtssl_nb.runs import load_run
from mtssl_nb.train import Trainer, load_train_config

FIXTURE = Path(__file__).parent / "fixtures" / "tf_resnet_v2_tiny"
MTSSL = Path(sys.executable).parent / "mtssl"
SHAPE = ["trunk.preset=small", "trunk.width=0.125"]  # the fixture's trunk


def mtssl(*args, cwd):
    return subprocess.run([str(MTSSL), *args], capture_output=True, text=True, cwd=cwd)


def test_eval_probes_the_tf_checkpoint_against_random_init(tmp_path):
    out = mtssl("eval", "--checkpoint", f"multiself:{FIXTURE}", "--data", "shapes", "--n-train", "60", "--n-test", "30",
                "--size", "32", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = "| shapes (test images of unknown source: unchecked) |"  # the authors' pretext data is not here to check against
    assert f"{row} trained |" in out.stdout and f"{row} random init |" in out.stdout
    res = json.loads((tmp_path / "runs" / "multiself" / "eval.json").read_text())
    assert set(res["probes"]["shapes"]) == {"trained", "random init"} and res["step"] == 1234  # the checkpoint's global_step
    run = load_run(f"multiself:{FIXTURE}")
    ref = trunk_from_tf_checkpoint(FIXTURE)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad(): assert torch.equal(run.net.trunk(x).out, ref(x).out)
    bad = mtssl("eval", "--checkpoint", f"multiself:{tmp_path}/nothing", cwd=tmp_path)
    assert bad.returncode == 2 and "nothing.index does not exist" in bad.stderr


def test_train_starts_from_the_tf_checkpoint(tmp_path):
    cfg = load_train_config("smoke", [*SHAPE, f"trunk.init=multiself:{FIXTURE}", f"out_dir={tmp_path}/run", "steps=2"])
    trainer = Trainer(cfg, progress=False)
    ref = trunk_from_tf_checkpoint(FIXTURE)
    for (name, a), b in zip(trainer.net.trunk.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), name  # every weight and BN statistic from the file
    trainer.run()
    run = load_run(tmp_path / "run")
    assert run.step == 2 and not torch.equal(run.net.trunk.conv1.weight, ref.conv1.weight)  # and it trained on
    wrong = load_train_config("smoke", [f"trunk.init=multiself:{FIXTURE}", f"out_dir={tmp_path}/wrong"])
    with pytest.raises(ConfigError, match="trunk.init=multiself:.* holds the small trunk at width 0.125"):
        Trainer(wrong, progress=False)
    assert not (tmp_path / "wrong").exists()  # a bad config writes nothing
    with pytest.raises(ConfigError, match="trunk.init must be multiself:PATH"):
        Trainer(load_train_config("smoke", ["trunk.init=somewhere", f"out_dir={tmp_path}/wrong"]), progress=False)


def test_export_on_the_command_line(tmp_path):
    out = mtssl("train", "--config", "smoke", "steps=2", "out_dir=run", "--quiet", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    out = mtssl("export", "run", "hub", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "hub").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    back, run = from_pretrained(tmp_path / "hub"), load_run(tmp_path / "run")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad(): assert torch.equal(back.net.trunk(x).out, run.net.trunk(x).out)
    assert load_run(tmp_path / "hub").step == 2  # an export loads wherever a run does
    again = mtssl("export", "run", "run", cwd=tmp_path)  # never over a run folder
    assert again.returncode == 2 and "is not an earlier export" in again.stderr

"""The `mtssl` command as a user runs it, and the committed samples against a rebuild."""
import subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtssl_nb.data import read_image
from mtssl_nb.samples import bigbuckbunny_path
from mtssl_nb.video import load_clip, read_video

ROOT = Path(__file__).resolve().parents[1]
MTSSL = Path(sys.executable).parent / "mtssl"


def run(*args, cwd=None):
    return subprocess.run([str(MTSSL), *args], capture_output=True, text=True, cwd=cwd)


def test_help_and_version():
    out = run("--help")
    assert out.returncode == 0 and "samples" in out.stdout and "demo" in out.stdout
    mod = subprocess.run([sys.executable, "-m", "mtssl_nb.cli", "--version"], capture_output=True, text=True)
    assert mod.returncode == 0 and mod.stdout.startswith("mtssl_nb ")
    bad = run("fly")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    # each command imports what it needs when it runs: the parser alone loads neither PyTorch nor matplotlib
    lean = subprocess.run([sys.executable, "-c", "import sys, mtssl_nb.cli as c; c.make_parser().parse_args(['tasks']); "
                           "print(sorted(m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules))"], capture_output=True, text=True)
    assert lean.returncode == 0 and lean.stdout.strip() == "[]", lean.stdout + lean.stderr


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    d = tmp_path_factory.mktemp("samples")
    for name in ("a", "b"):
        out = run("samples", "--out", str(d / name))
        assert out.returncode == 0, out.stderr
        assert "sample data written to" in out.stdout
    return d / "a", d / "b"


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_samples_are_deterministic(rebuilt):
    a, b = map(_files, rebuilt)
    assert a.keys() == b.keys() and len(a) >= 27
    assert [k for k in a if a[k] != b[k]] == []  # byte for byte
    assert sum(map(len, a.values())) < 400_000  # a few hundred KB at most


def test_committed_samples_match_a_rebuild(rebuilt):
    """data_samples/ is what `mtssl samples` makes; compared by content, since encoders may change bytes across versions."""
    new, old = rebuilt[0], ROOT / "data_samples"
    assert sorted(_files(new)) == sorted(_files(old))
    assert (new / "README.md").read_text() == (old / "README.md").read_text()
    for p in sorted(old.glob("images/*/*.jpg")):
        diff = (read_image(p).float() - read_image(new / p.relative_to(old)).float()).abs().mean()
        assert diff < 2, p
    for p in sorted(old.glob("clips/*.mp4")):
        c_old, c_new = load_clip(p), load_clip(new / p.relative_to(old))
        assert torch.equal(c_old.masks, c_new.masks), p  # masks are exact
        assert (c_old.frames.float() - c_new.frames.float()).abs().mean() < 2, p
    if bigbuckbunny_path():
        v_old, v_new = read_video(old / "video/bigbuckbunny.mp4"), read_video(new / "video/bigbuckbunny.mp4")
        assert v_old.shape == v_new.shape == (24, 3, 90, 160)
        assert (v_old.float() - v_new.float()).abs().mean() < 2


def test_demo_writes_the_report(tmp_path):
    """The demo with a reduced budget (--quick: what IN_TEST does too): samples, a trained run, the probe table, report.html;
    an earlier demo's run in the same folder is replaced, not resumed or refused."""
    demo = tmp_path / "demo"
    (demo / "run" / "checkpoints").mkdir(parents=True)
    (demo / "run" / "config.yaml").write_text("steps: 99\n")  # an earlier demo's run
    (demo / "run" / "checkpoints" / "step_0000099.pt").write_bytes(b"old")
    out = run("demo", "--out", str(demo), "--quick", "--quiet")
    assert out.returncode == 0, out.stderr
    assert [p.name for p in (demo / "run" / "checkpoints").glob("*.pt")] == ["step_0000004.pt"]  # the smoke preset's 4 steps, afresh
    assert f"report written to {demo / 'report.html'}" in out.stdout and "| shapes | trained |" in out.stdout
    assert "| digits | random init |" in out.stdout and "(0." in out.stdout  # both leak-free probe sets, against random init, with intervals
    from PIL import Image
    with Image.open(demo / "gallery.png") as im:
        assert im.size[0] >= 1000 and np.asarray(im.convert("L")).std() > 20  # a real picture, not a blank canvas
    page = (demo / "report.html").read_text()
    imgs = [p.split("'")[0] for p in page.split("<img src='")[1:]]
    assert {"figures/task_relpos.png", "figures/task_color.png", "figures/task_exemplar.png", "figures/task_motion.png", "figures/curves.png"} <= set(imgs)
    for p in imgs:
        with Image.open(demo / p) as im:  # every figure the page shows exists and holds a picture
            assert im.size[0] > 200 and np.asarray(im.convert("L")).std() > 10, p

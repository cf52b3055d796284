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


def odd_images(root: Path, seed: int = 0):
    "Every kind of file an image folder meets: JPEG, RGBA PNG, grayscale, 16-bit, CMYK, EXIF-rotated, palette GIF."
    from PIL import Image
    rng = np.random.default_rng(seed)
    px = lambda h, w, c=3: rng.integers(0, 256, (h, w, c), dtype=np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    Image.fromarray(px(150, 170)).save(root / "rgb.jpg")
    Image.fromarray(px(140, 160, 4)).save(root / "rgba.png")
    Image.fromarray(px(130, 131, 1)[..., 0]).save(root / "gray.png")
    Image.fromarray(rng.integers(0, 65535, (133, 150)).astype(np.uint16)).save(root / "deep.png")
    Image.fromarray(px(150, 150)).convert("CMYK").save(root / "cmyk.jpg")
    im = Image.fromarray(px(160, 128)); exif = im.getexif(); exif[0x0112] = 6; im.save(root / "rotated.jpg", exif=exif)
    Image.fromarray(px(128, 128)).convert("P").save(root / "palette.gif")


def test_image_folder_training_has_no_stray_warnings(tmp_path):
    "The README's train and eval commands on an image folder print no library warning: Python's -W error turns one into a failure."
    odd_images(tmp_path / "photos" / "mixed")
    for split in ("train", "val"):
        for k, cls in enumerate(("a", "b")): odd_images(tmp_path / "probe" / split / cls, seed=10 * k + len(split))
    strict = [sys.executable, "-W", "error", "-m", "mtssl_nb.cli"]
    run_dir = tmp_path / "run"
    t = subprocess.run([*strict, "train", "--config", "real", f"images=folder:{tmp_path / 'photos'}", "steps=2", f"out_dir={run_dir}",
                        "ckpt_every=2", "--quiet"], capture_output=True, text=True)
    assert t.returncode == 0 and "Warning" not in t.stderr, t.stderr[-3000:]
    e = subprocess.run([*strict, "eval", "--checkpoint", str(run_dir), "--probe", "linear,knn,heads", "--data", f"folder:{tmp_path / 'probe'}",
                        "--n-train", "14", "--n-test", "14", "--quiet"], capture_output=True, text=True)
    assert e.returncode == 0 and "Warning" not in e.stderr, e.stderr[-3000:]
    assert "relpos head on folder:" in e.stdout

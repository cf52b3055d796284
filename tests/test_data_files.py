"""Loaders on small files written here in the real on-disk formats, and every kind of bad input."""
import pickle, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mtssl_nb.data import (BadFileWarning, ImageFolderSource, ImageReadError, cifar10, forever, image_loader, image_source,
                           read_image, stl10)
from mtssl_nb.video import VideoReadError, clip_loader, read_video, write_video

ROOT = Path(__file__).resolve().parents[1]
rng = np.random.default_rng(0)


# --- CIFAR-10 and STL-10 in their real formats -------------------------------------------------

def write_cifar10(root: Path, per_batch=3):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    images = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        images[name] = x
        with open(d / name, "wb") as f:
            pickle.dump({"data": x.reshape(per_batch, -1), "labels": list(range(per_batch))}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]}, f)
    return images


def test_cifar10_reads_real_format(tmp_path):
    images = write_cifar10(tmp_path)
    train, test = cifar10(tmp_path, check_md5=False), cifar10(tmp_path, train=False, check_md5=False)
    assert (len(train), len(test)) == (15, 3)
    x, y = train[4]
    assert x.dtype == torch.uint8 and x.shape == (3, 32, 32) and y == 1
    assert torch.equal(x, torch.from_numpy(images["data_batch_2"][1]))  # channel-first layout kept
    assert train.classes[3] == "cat"
    assert image_loader(train, size=32, batch_size=4).dataset.source is train


def test_cifar10_checksums_and_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing data_batch_1.*download=True"):
        cifar10(tmp_path)
    write_cifar10(tmp_path)
    with pytest.raises(RuntimeError, match="MD5 checksums .*: data_batch_1, data_batch_2.*check_md5=False"):
        cifar10(tmp_path)  # our files are not the real ones
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing test_batch$|missing test_batch\."):
        cifar10(tmp_path, check_md5=False)


def test_cifar10_damaged_files(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04junk")
    with pytest.raises(RuntimeError, match=r"CIFAR-10 files in .*cifar-10-batches-py cannot be read \(UnpicklingError"):
        cifar10(tmp_path, check_md5=False)


def write_stl10(root: Path, n=4):
    d = root / "stl10_binary"
    d.mkdir(parents=True)
    sets = {}
    for split in ("train", "test", "unlabeled"):
        x = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        sets[split] = x
        x.transpose(0, 1, 3, 2).tofile(d / f"{split}_X.bin")  # STL-10 stores each image column-major
        if split != "unlabeled":
            np.arange(1, n + 1, dtype=np.uint8).tofile(d / f"{split}_y.bin")  # labels are 1-based on disk
    (d / "class_names.txt").write_text("\n".join(["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]))
    return sets


def test_stl10_reads_real_format(tmp_path):
    sets = write_stl10(tmp_path)
    unl = stl10(tmp_path, check_md5=False)
    x, y = unl[2]
    assert x.shape == (3, 96, 96) and y == -1
    assert torch.equal(x, torch.from_numpy(sets["unlabeled"][2]))  # rows and columns the right way round
    tr = stl10(tmp_path, split="train", check_md5=False)
    assert tr[3][1] == 3 and tr.classes[0] == "airplane"
    with pytest.raises(FileNotFoundError, match="STL-10 is not in .*missing train_X.bin"):
        stl10(tmp_path / "elsewhere")


def test_image_source_specs(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(RuntimeError, match="MD5"):
        image_source(f"cifar10:{tmp_path}:test")
    assert len(image_source(str(ROOT / "data_samples" / "images"))) == 20


# --- image folders: formats, bad files, missing folders ---------------------------------------

def test_image_modes_are_converted(tmp_path):
    d = tmp_path / "imgs" / "a"
    d.mkdir(parents=True)
    Image.fromarray(np.full((8, 10), 77, np.uint8)).save(d / "gray.png")
    rgba = np.zeros((8, 10, 4), np.uint8); rgba[..., 0] = 255; rgba[:4, ..., 3] = 255
    Image.fromarray(rgba).save(d / "rgba.png")
    Image.fromarray(np.full((8, 10), 65535, np.uint16)).save(d / "gray16.png")
    import cv2
    cv2.imwrite(str(d / "rgb16.png"), np.full((8, 10, 3), 32896, np.uint16))
    Image.new("CMYK", (10, 8), (0, 255, 255, 0)).save(d / "cmyk.jpg")
    Image.new("P", (10, 8), 3).save(d / "palette.gif")
    ds = ImageFolderSource(tmp_path / "imgs", verify="full")
    got = {p.name: read_image(p) for p, _ in ds.samples}
    assert all(x.shape == (3, 8, 10) and x.dtype == torch.uint8 for x in got.values())
    assert got["gray.png"].unique().tolist() == [77]
    assert got["rgba.png"][:, 0, 0].tolist() == [255, 0, 0] and got["rgba.png"][:, 7, 0].tolist() == [255, 255, 255]
    assert got["gray16.png"].unique().tolist() == [255]  # scaled from 16 bits, not clipped
    assert got["rgb16.png"].unique().tolist() == [128]
    assert got["cmyk.jpg"][0].float().mean() > 200 and got["cmyk.jpg"][1:].float().mean() < 60  # CMYK red stays red


def _folder_with(tmp_path, n_good, bad):
    root = tmp_path / "data"
    for i in range(n_good):
        (root / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(root / f"c{i % 2}" / f"{i}.png")
    for name, data in bad.items():
        (root / "c0" / name).write_bytes(data)
    (root / "c0" / ".DS_Store").write_bytes(b"\0\0")  # hidden: not data, not counted
    return root


def test_bad_files_are_skipped_named_and_counted(tmp_path):
    root = _folder_with(tmp_path, 18, {"broken.jpg": b"\xff\xd8 this is not a jpeg", "notes.txt": b"hello"})
    with pytest.warns(BadFileWarning, match=r"skipped 2 of 20 files \(1 unreadable, 1 not images\).*broken\.jpg.*notes\.txt \(unsupported file type '\.txt'\)"):
        ds = ImageFolderSource(root, max_bad_frac=0.1)  # 1 bad image of 19: under the limit; the .txt does not count
    assert len(ds) == 18 and {p.name for p, _ in ds.skipped} == {"broken.jpg", "notes.txt"}
    assert all((root / "c0" / n).exists() for n in ("broken.jpg", "notes.txt"))  # nothing is deleted


def test_too_many_bad_files_fail(tmp_path):
    root = _folder_with(tmp_path, 4, {f"bad{i}.png": b"garbage" for i in range(3)})
    with pytest.raises(ValueError, match=r"3 of 7 image files \(43%\) cannot be read, more than max_bad_frac=10%"):
        ImageFolderSource(root)


def test_truncated_file_found_late_is_replaced(tmp_path):
    root = _folder_with(tmp_path, 4, {})
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "c0" / "00trunc.jpg")
    data = (root / "c0" / "00trunc.jpg").read_bytes()
    (root / "c0" / "00trunc.jpg").write_bytes(data[: len(data) // 2])
    ds = ImageFolderSource(root, verify="header")  # the header reads fine
    i = [p.name for p, _ in ds.samples].index("00trunc.jpg")
    with pytest.warns(BadFileWarning, match="00trunc.jpg: cannot decode image.*using the next image"):
        x, _ = ds[i]
    assert torch.equal(x, read_image(ds.samples[i + 1][0]))
    with pytest.warns(BadFileWarning, match="00trunc.jpg"):
        assert len(ImageFolderSource(root, verify="full", max_bad_frac=0.5)) == 4


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist"):
        ImageFolderSource(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir(); (tmp_path / "flat" / "a.png").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="has no class subfolders"):
        ImageFolderSource(tmp_path / "flat")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_image(tmp_path / "none.png")
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(ImageReadError, match="x.png: cannot decode image"):
        read_image(tmp_path / "x.png")


# --- video -------------------------------------------------------------------------------------

def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="video file .*gone.mp4 does not exist"):
        read_video(tmp_path / "gone.mp4")
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(VideoReadError, match="text.mp4: not a readable video"):
        read_video(tmp_path / "text.mp4")
    frames = torch.zeros(4, 3, 32, 48, dtype=torch.uint8)
    good = write_video(tmp_path / "ok.mp4", frames)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:200])  # a file cut short in a copy
    with pytest.raises(VideoReadError, match="cut.mp4"):
        read_video(tmp_path / "cut.mp4")
    with pytest.raises(ValueError, match="odd.mp4: libx264 needs an even width and height, got 47x32"):
        write_video(tmp_path / "odd.mp4", frames[..., :47])
    assert not (tmp_path / "odd.mp4").exists() and not list(tmp_path.glob(".*part*"))


def test_video_frame_rate_size_and_range(tmp_path):
    t = torch.arange(30, dtype=torch.uint8)[:, None, None, None] * 8
    p = write_video(tmp_path / "ramp.mkv", t.expand(30, 3, 40, 60).contiguous(), fps=30, codec="ffv1")
    v = read_video(p, fps=10, start=1, stop=5, size=(20, 30))
    assert v.shape == (4, 3, 20, 30)
    assert v[:, 0, 0, 0].tolist() == [24, 48, 72, 96]  # frames 3, 6, 9, 12 of the 30 fps original


# --- loaders -----------------------------------------------------------------------------------

def test_batches_do_not_depend_on_worker_count():
    src = ImageFolderSource(ROOT / "data_samples" / "images")
    a = [x for x, _ in image_loader(src, size=48, batch_size=5, seed=3, num_workers=0)]
    b = [x for x, _ in image_loader(src, size=48, batch_size=5, seed=3, num_workers=2)]
    assert len(a) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))


def test_epochs_reach_persistent_workers():
    """The epoch travels with each index, so new crops come every epoch even in workers that live on."""
    src = ImageFolderSource(ROOT / "data_samples" / "images")
    def two_epochs(**kw):
        it = forever(image_loader(src, size=32, batch_size=20, seed=1, **kw))
        return next(it)[0], next(it)[0]
    ref = two_epochs(num_workers=0)
    got = two_epochs(num_workers=2, persistent_workers=True)
    assert not torch.equal(ref[0], ref[1])
    assert torch.equal(ref[0], got[0]) and torch.equal(ref[1], got[1])


def test_clip_loader_reads_saved_clips():
    frames, masks = next(iter(clip_loader(ROOT / "data_samples" / "clips", size=64, batch_size=6, num_workers=2)))
    assert frames.shape == (6, 3, 64, 64) and masks.shape == (6, 1, 64, 64)
    assert set(masks.unique().tolist()) <= {0, 1}


def test_import_in_plain_python():
    code = "from mtssl_nb.data import image_loader, PhotoPool, ImageFolderSource, cifar10, stl10; from mtssl_nb.video import read_video, synthetic_clip; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr

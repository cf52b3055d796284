"""The README's task pictures, drawn from the demo's trained run: `make demo`, then
`.venv/bin/python docs/readme_images.py` (writes docs/images/*.png, palette PNGs of a few dozen KB each)."""
import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

from mtssl_nb.report import task_gallery
from mtssl_nb.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


def main(run=ROOT / "runs" / "demo" / "run", out=ROOT / "docs" / "images"):
    if not Path(run).is_dir(): sys.exit(f"{run} does not exist: run `make demo` first")
    r = load_run(run)
    out.mkdir(parents=True, exist_ok=True)
    for task in r.tasks:
        fig = task_gallery(r, task, n=2)
        path = out / f"{task}.png"
        fig.savefig(path, dpi=80, bbox_inches="tight"); plt.close(fig)
        Image.open(path).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main(*sys.argv[1:2])

"""A real JupyterLab driven by Chromium through Playwright: start it, open a notebook, run it, look at it."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("MTSSL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "runs" / "screenshots"
# what the browser suite drives: every widget notebook and the walkthroughs MTSSL_BROWSER_WALKTHROUGHS names (default: the first
# task walkthrough; "all": every one)
WIDGET_NOTEBOOKS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "nbs").glob("5*_widgets.*.ipynb"))
ALL_WALKTHROUGHS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "nbs" / "tutorials").glob("[0-9]*.ipynb"))
CHOSEN_WALKTHROUGHS = os.environ.get("MTSSL_BROWSER_WALKTHROUGHS", "01_relative_position")
WALKTHROUGHS = ALL_WALKTHROUGHS if CHOSEN_WALKTHROUGHS == "all" else [p for p in ALL_WALKTHROUGHS if Path(p).stem in CHOSEN_WALKTHROUGHS.split(",")]


def browser_missing() -> list[str]:
    "What the browser suite lacks here (Chromium, Playwright); empty when it can run."
    try:
        import playwright.sync_api  # noqa: F401
        has_pw = True
    except ImportError: has_pw = False
    return [what for what, ok in (("Chromium at " + CHROMIUM, Path(CHROMIUM).exists()), ("playwright", has_pw)) if not ok]


def browser_runs() -> bool:
    "Does the browser suite run in this session (it can, or MTSSL_BROWSER=required makes it fail rather than skip)?"
    return not browser_missing() or os.environ.get("MTSSL_BROWSER") == "required"
SETTINGS = {  # every cell in the page (no virtual scrolling), no autosave (the test saves when it wants), no news toast
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    "JupyterLab on 127.0.0.1 with a token, serving a scratch copy of the notebooks (so autosave never touches the sources)."
    def __init__(self, work: Path, token: str = "mtssl-browser-test"):
        self.work, self.token, self.port = Path(work), token, free_port()
        for name in ("nbs", "assignments"):
            if (ROOT / name).is_dir(): shutil.copytree(ROOT / name, self.work / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        for name in ("data_samples",): (self.work / name).symlink_to(ROOT / name)
        settings = self.work / "lab-settings"
        for plugin, value in SETTINGS.items():
            f = settings / f"{plugin}.jupyterlab-settings"
            f.parent.mkdir(parents=True, exist_ok=True); f.write_text(json.dumps(value))
        self.log = open(self.work / "jupyterlab.log", "w")
        env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # pytest's Agg would stop figures showing inline
        env["IN_TEST"] = "1"  # the notebooks shrink their work as under nbdev-test
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                                      f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={self.work}",
                                      f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={self.work / 'lab-workspaces'}"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.work)
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close(); break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; its log: {self.work / 'jupyterlab.log'}")
                time.sleep(0.5)

    def url(self, notebook: str) -> str:
        return f"http://127.0.0.1:{self.port}/lab/workspaces/t{self.port}{abs(hash(notebook))}/tree/{notebook}?reset&token={self.token}"

    def stop_kernels(self):
        "Shut down every kernel the server runs (each open notebook keeps one, about 1 GB, until the server ends)."
        import urllib.request
        api = f"http://127.0.0.1:{self.port}/api/kernels"
        with urllib.request.urlopen(f"{api}?token={self.token}", timeout=30) as r: kernels = json.load(r)
        for k in kernels:
            urllib.request.urlopen(urllib.request.Request(f"{api}/{k['id']}?token={self.token}", method="DELETE"), timeout=60).close()

    def close(self):
        self.proc.terminate()
        try: self.proc.wait(20)
        except subprocess.TimeoutExpired: self.proc.kill()
        self.log.close()


KERNEL_IDLE = "() => [...document.querySelectorAll('.jp-StatusBar-TextItem, .jp-StatusBar-Item')].some(e => e.innerText.includes('Idle'))"
ALL_RUN = "() => [...document.querySelectorAll('.jp-InputArea-prompt')].every(e => !e.innerText.includes('*'))"


def run_all(page, lab: Lab, notebook: str, timeout_s: float = 600):
    "Open `notebook` (relative to the lab's root), wait for its kernel, run all cells, wait until none is running."
    page.goto(lab.url(notebook))
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    page.click("text=Run", timeout=10_000)
    page.click("text=Run All Cells", timeout=10_000)
    page.wait_for_function("() => [...document.querySelectorAll('.jp-InputArea-prompt')].some(e => e.innerText.includes('*'))", timeout=30_000)
    page.wait_for_function(ALL_RUN, timeout=timeout_s * 1000, polling=1000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    time.sleep(2)  # widget views render after the kernel's last message


def problems(page) -> list[str]:
    "Error outputs and widgets that failed to render, as text."
    errs = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'], .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    out = [errs.nth(i).inner_text()[:2000] for i in range(errs.count())]
    body = page.inner_text("body")
    out += [line for line in body.splitlines() if "Error displaying widget" in line or "Traceback (most recent call last)" in line]
    return out


def saved_errors(page, path: Path) -> list[str]:
    "Save the open notebook and return the error outputs stored in `path` (the kernel's own record: what the page shows can be scrolled away)."
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    deadline = time.time() + 30
    while path.stat().st_mtime_ns == before:
        if time.time() > deadline: raise TimeoutError(f"{path} was not saved")
        time.sleep(0.3)
    time.sleep(0.5)
    nb = json.loads(path.read_text())
    return [f"cell {i}: {o.get('ename')}: {o.get('evalue')}" for i, c in enumerate(nb["cells"]) for o in c.get("outputs", [])
            if o.get("output_type") == "error"]

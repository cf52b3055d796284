"""The documentation site as a reader meets it in Chromium: `docs/build_site.py` builds it from the notebooks (one notebook
run, so its figures are on its page; the others show their code, as `--execute-only` says), then every page opens and
renders, every link inside the site leads to a page (and an anchor) that exists, every image loads, the run notebook's
figures are there, and the search page finds a function by its name.

A full build with every notebook run is `make docs`; this test checks what the site is made of at a cost CI can pay."""
import functools
import http.server
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = "02_color"  # the notebook this build runs: it draws figures, in a few seconds


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, str(ROOT / "docs" / "build_site.py"), "--out", str(out), "--execute-only", RUN],
                       capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert r.returncode == 0, f"the site did not build:\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def pages(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_"))


def test_every_page_renders_its_links_lead_somewhere_and_its_images_load(site, page):
    out, url = site
    names = pages(out)
    for must in ("index.html", "api.html", "architecture.html", "course.html", "search.html", f"nbs/{RUN}.html",
                 "nbs/11_tasks.relpos.html", "nbs/34_train.html", "nbs/tutorials/05_combining_tasks.html"):
        assert must in names, f"{must} is not in the site ({len(names)} pages)"
    broken, empty, bad_images, errors = [], [], [], []
    page.on("pageerror", lambda e: errors.append(f"{page.url}: {e}"))
    for name in names:
        page.goto(f"{url}/{name}", wait_until="load")
        if name != "search.html" and len(page.locator("article").first.inner_text().strip()) < 200: empty.append(name)  # the page's own text, not the navigation
        bad_images += [f"{name}: {s}" for s in page.evaluate(
            "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))")]
        for href in page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)"):
            u = urlparse(href)
            if u.netloc != urlparse(url).netloc: continue  # outside the site (GitHub source links, the paper)
            target = out / unquote(u.path).lstrip("/")
            if target.is_dir(): target = target / "index.html"
            if not target.is_file(): broken.append(f"{name} -> {u.path}"); continue
            if u.fragment and target.suffix == ".html" and f'id="{unquote(u.fragment)}"' not in target.read_text(errors="replace"):
                broken.append(f"{name} -> {u.path}#{u.fragment} (no such anchor)")
    assert not empty, f"pages with next to no text: {empty}"
    assert not broken, f"{len(broken)} broken links inside the site, e.g. {sorted(set(broken))[:10]}"
    assert not bad_images, f"images that do not load: {bad_images[:10]}"
    assert not errors, f"script errors: {errors[:5]}"


def test_the_run_notebook_shows_its_figures_and_the_api_its_docments(site, page):
    out, url = site
    page.goto(f"{url}/nbs/{RUN}.html", wait_until="load")
    n = page.evaluate("() => [...document.querySelectorAll('.cell_output img')].filter(i => i.naturalWidth > 100).length")
    assert n >= 3, f"{RUN}: {n} figures on its page"
    page.goto(f"{url}/nbs/11_tasks.relpos.html", wait_until="load")  # not run: its code and prose, no outputs
    assert page.locator(".cell_output img").count() == 0 and "relpos_quality" in page.inner_text("main")
    page.goto(f"{url}/api.html", wait_until="load")
    api = page.inner_text("main")
    assert "mtssl_nb.tasks.relpos" in api and "held-out uint8 images" in api  # a parameter's docment, from the signature


def test_search_finds_a_function_by_name(site, page):
    out, url = site
    page.goto(f"{url}/search.html?q=relpos_quality", wait_until="load")
    page.wait_for_selector("#search-results li a", timeout=60_000)
    hits = page.evaluate("() => [...document.querySelectorAll('#search-results li a')].map(a => a.getAttribute('href'))")
    assert any("11_tasks.relpos" in h for h in hits) and any("api" in h for h in hits), hits

"""Each widget notebook and a walkthrough in a real JupyterLab (Chromium through Playwright): every cell runs without
error, every widget renders, moving a slider changes the figure it drives, and plotly figures draw their traces.
Screenshots of every widget go to runs/screenshots/ for a person to look at.

The notebooks driven here are the run of record for them: tests/test_notebooks.py leaves them out when this suite runs
(each notebook runs once). Every other walkthrough runs under nbdev there; its widgets are the classes the widget
notebooks drive here, so by default one walkthrough (the first of the task walkthroughs) is driven in the browser.
`MTSSL_BROWSER_WALKTHROUGHS=all` (or a comma-separated list of names) drives the others: before a release, or after
changing a walkthrough."""
import time
from pathlib import Path

import pytest

from lab import ALL_WALKTHROUGHS, CHOSEN_WALKTHROUGHS, SHOTS, WALKTHROUGHS, WIDGET_NOTEBOOKS, problems, run_all, saved_errors


def _images(area) -> list:
    return [area.locator("img").nth(i).get_attribute("src") for i in range(area.locator("img").count())]


def move_slider(page, area) -> tuple[str, str]:
    "Move the first slider in the output `area` a few steps (right, or left at its end); returns its readout before and after."
    slider = area.locator(".widget-slider").first
    readout = slider.locator(".widget-readout")
    before = readout.inner_text() if readout.count() else ""
    handle = slider.locator(".noUi-handle").first
    handle.scroll_into_view_if_needed()
    for key in ("ArrowRight", "ArrowLeft"):
        handle.focus()
        for _ in range(3): page.keyboard.press(key)
        time.sleep(0.3)
        if readout.inner_text() != before: break
    return before, readout.inner_text()


def shot(area, name: str):
    SHOTS.mkdir(parents=True, exist_ok=True)
    area.scroll_into_view_if_needed()
    area.screenshot(path=str(SHOTS / f"{name}.png"))


@pytest.mark.parametrize("notebook", WIDGET_NOTEBOOKS, ids=lambda p: Path(p).stem)
def test_widget_notebook(lab, page, notebook):
    assert WIDGET_NOTEBOOKS, "no widget notebooks found"
    check_notebook(lab, page, notebook, need_widgets=True)


@pytest.mark.parametrize("notebook", WALKTHROUGHS, ids=lambda p: Path(p).stem)
def test_walkthrough(lab, page, notebook):
    assert len(ALL_WALKTHROUGHS) >= 8 and WALKTHROUGHS, (ALL_WALKTHROUGHS, CHOSEN_WALKTHROUGHS)
    check_notebook(lab, page, notebook, need_widgets=False)


def check_notebook(lab, page, notebook: str, need_widgets: bool):
    "Run `notebook` in the lab; no errors; every slider moves its figure; every plotly figure has points."
    stem = Path(notebook).stem
    run_all(page, lab, notebook)
    assert not (errs := saved_errors(page, lab.work / notebook)), f"{notebook}: cells raised:\n" + "\n".join(errs)
    assert not (bad := problems(page)), f"{notebook}: the page shows errors:\n" + "\n".join(bad)

    outputs = page.locator(".jp-Cell-outputArea")
    areas = [outputs.nth(i) for i in range(outputs.count())]
    with_sliders = [a for a in areas if a.locator(".widget-slider .noUi-handle").count()]
    with_plotly = [a for a in areas if a.locator(".js-plotly-plot").count()]
    assert with_sliders or with_plotly or not need_widgets, f"{notebook}: no slider and no plotly figure rendered"
    assert page.locator(".jp-OutputArea-output img").count() > 0 or with_plotly, f"{notebook}: no figure rendered"

    for k, area in enumerate(with_sliders):
        name = f"{stem}_{k}"
        shot(area, name)
        imgs = _images(area)
        assert imgs, f"{notebook}: widget {k} shows no figure"
        before, after = move_slider(page, area)
        assert before != after, f"{notebook}: widget {k}: the slider did not move ({before!r})"
        deadline = time.time() + 30
        while _images(area) == imgs and time.time() < deadline: time.sleep(0.5)
        assert _images(area) != imgs, f"{notebook}: widget {k}: moving the slider from {before} to {after} did not change the figure"
        assert "cannot show this" not in area.inner_text(), f"{notebook}: widget {k}: {area.inner_text()[:300]}"
        warned = area.locator("[data-mime-type='application/vnd.jupyter.stderr']")
        assert not warned.count(), f"{notebook}: widget {k} printed to stderr: {warned.first.inner_text()[:300]}"
        shot(area, f"{name}_moved")

    for k, area in enumerate(with_plotly):
        plot = area.locator(".js-plotly-plot").first
        points = plot.locator(".scatterlayer .trace .point").count()
        assert points > 0, f"{notebook}: plotly figure {k} has no points drawn"
        shot(area, f"{stem}_plot{k}")
    assert not (bad := problems(page)), f"{notebook}: after moving sliders the page shows errors:\n" + "\n".join(bad)

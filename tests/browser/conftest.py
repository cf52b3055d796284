import pytest

from lab import CHROMIUM, CHROMIUM_ARGS, Lab, browser_missing, browser_runs


def pytest_collection_modifyitems(config, items):
    "Without Chromium or Playwright the browser tests are skipped with the reason, unless MTSSL_BROWSER=required (CI), where they fail."
    if browser_runs(): return
    missing = browser_missing()
    skip = pytest.mark.skip(reason=f"browser tests need {' and '.join(missing)} (apt install chromium; pip install playwright)")
    for item in items:
        if "tests/browser" in str(item.fspath): item.add_marker(skip)


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    pg = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield pg
    pg.close()
    if "lab" in request.fixturenames: request.getfixturevalue("lab").stop_kernels()  # the notebook's kernel goes with its page

"""pytest settings for grading an assignment: `pytest assignments/grade.py --notebook PATH`."""
import pytest


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="the assignment notebook to grade (e.g. assignments/01_relpos_labels.ipynb)")
    parser.addoption("--checks", default=None, help="a file of hidden checks (default: the installed mtssl_instructor package, if any)")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    report = config.stash.get(REPORT, None)
    if report is not None:
        terminalreporter.section("grade")
        terminalreporter.write_line(report.table())


REPORT = pytest.StashKey()

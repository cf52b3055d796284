"""Grade one assignment notebook with pytest, a test per question:

    pytest assignments/grade.py --notebook assignments/01_relpos_labels.ipynb

The notebook runs once in its own kernel (every cell, even after one fails); each question's test fails with the grader's message
(what was given, what was expected, what came back), and the score table is printed at the end. `mtssl grade PATH`
does the same without pytest.
"""
import pytest
from conftest import REPORT

from mtssl_nb.grade import ASSIGNMENTS, assignment_of, grade, load_hidden_checks, read_notebook


def _notebook(config) -> str:
    path = config.getoption("--notebook")
    if not path: raise pytest.UsageError("give the notebook to grade: pytest assignments/grade.py --notebook PATH")
    return path


def pytest_generate_tests(metafunc):
    if "question" in metafunc.fixturenames:
        path = _notebook(metafunc.config)
        try: name = assignment_of(read_notebook(path), path)
        except (OSError, ValueError) as e: raise pytest.UsageError(str(e)) from None
        if name not in ASSIGNMENTS: raise pytest.UsageError(f"{path}: ASSIGNMENT = {name!r} is not known; known: {', '.join(ASSIGNMENTS)}")
        metafunc.parametrize("question", [q.name for q in ASSIGNMENTS[name]])


@pytest.fixture(scope="module")
def report(request):
    load_hidden_checks(request.config.getoption("--checks"))  # the instructor's, when installed or given
    r = grade(_notebook(request.config), own=True)  # a student checking their own notebook: in a sandbox where one runs, else told it is off
    request.config.stash[REPORT] = r
    return r


def test_question(report, question):
    s = next(s for s in report.scores if s.question == question)
    if s.points < s.max_points: pytest.fail(f"{question}: {s.message}", pytrace=False)

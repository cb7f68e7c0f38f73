"""One student's page: written for the student, to be handed back as feedback.

It shows the grade and how it was reached, the accuracy against the baselines, per-class accuracy, the
confusion matrix, misclassified test images, each written answer with its points and reason, and warnings
in plain words. It leaves out what is the TA's: the machine, its folders, the sandbox, integrity evidence.

"Please read" holds only the grader's words: the error's kind and the run's warning codes, worded here and in
protocol.WARNING_WORDS. A failure's message can quote the submission (its exception, its output, its file names),
so it is shown apart, under a label that says so; student code can reach everything the run reports.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from grader.answers import AnswersResult
from grader.datasets import CIFAR10_CLASSES
from grader.export.base import format_points
from grader.report.html import charts
from grader.report.html.hostpaths import HostPaths
from grader.report.html.shell import chart, render, template
from grader.report.html.split import OTHER_SPLIT, UNAVAILABLE, ReportSplit
from grader.report.words import (
    FILE_REVIEW_WORDS,
    RESCORED_WORDS,
    REVIEW_WORDS,
    import_words,
    item_words,
    question_words,
)
from grader.results.model import Result
from grader.review.subjects import ANSWERS_ERROR
from grader.rubric.points import ItemPoints
from grader.sandbox.protocol import warning_words

ERROR_WORDS = {
    "syntax": "model.py could not be read by Python (a syntax error).",
    "import": "model.py imports something that is not available when grading.",
    "contract": "The submission does not follow the contract in SUBMITTING.md (the model class or weights file).",
    "build": "The model could not be built from model.py.",
    "weights": "The weights could not be loaded into the model.",
    "forward": "The model failed while classifying the test images.",
    "output": "The model's output could not be used (wrong shape, NaN or unreadable).",
    "timeout": "The model did not finish within the time limit.",
    "memory": "The model used more memory than allowed.",
    "cpu": "The model used more CPU time than allowed.",
    "disk": "The model wrote more to disk than allowed.",
    "killed": "The model's process was stopped by the system.",
    "crash": "The model's process crashed.",
    "device": "The model asked for a device that grading does not have (e.g. a GPU).",
    "cancelled": "Grading was interrupted before your model finished; it will be graded again.",
    "intake": "The files of the submission could not be used.",
}
FLAG_WORDS = {
    "empty": "no answer was found",
    "off-topic": "the answer does not seem to address the question",
    "too-short": "the answer is very short",
    "copied-from-lab-text": "much of the answer repeats the lab text",
    "near-duplicate": "the wording is very close to another student's answer",
    "unnumbered": "the answers were not numbered, so they were matched to the questions in order",
}
RECORDED_WORDS = (
    "The message recorded when your submission failed, quoted as it was. It can contain your code's own "
    "messages, its output and your file names: those words are your submission's, not the grader's."
)
TEXT_LIMIT = 4000  # characters of one message or answer shown; the stored result keeps them whole


@dataclass
class GradeLine:
    label: str
    points: str
    reason: str = ""
    emphasis: bool = False


@dataclass
class AnswerView:
    number: int
    points: str
    reason: str
    text: str
    notes: list[str] = field(default_factory=list)
    needs_review: bool = False
    comment: str = ""  # the TA's, from grader review


@dataclass
class StudentView:
    """What the page shows, all as plain strings and numbers; the template escapes every one of them."""

    student: str
    graded: bool
    grade: str
    grade_lines: list[GradeLine]
    accuracy: str | None
    comparison: list[tuple[str, str, str, bool]]
    charts: list[tuple[str, object]]
    strip: list[tuple[str, str, str]]  # (image data URI, true class, predicted class)
    strip_note: str | None
    answers: list[AnswerView]
    answers_note: str | None
    warnings: list[str]
    recorded_error: str | None


def _shown(text: str | None, host: HostPaths | None) -> str:
    """A message for the page, cut to TEXT_LIMIT; with `host`, the machine's folders are taken out (a student's own
    text, an answer, is shown as written)."""
    text = host.scrub(text) if host is not None else text or ""
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + " […]"


def _points(value: float | None, maximum: float) -> str:
    return "-" if value is None else f"{format_points(value)} / {format_points(maximum)}"


def _number(value: float | None) -> str:
    return "-" if value is None else format_points(value)


def _label(item: str) -> str:
    return item.replace("exercise", "Exercise ").replace("_", " ").strip().capitalize()


def grade_lines(result: Result, host: HostPaths) -> tuple[str, list[GradeLine]]:
    maximum = sum(item.max_points for item in result.items)
    lines = [GradeLine(_label(item.item), _points(item.points, item.max_points), _item_reason(item, host))
             for item in result.items]  # fmt: skip
    lines.append(GradeLine("Total before adjustments", _points(result.points.total, maximum), emphasis=True))
    for decision in result.decisions:
        if decision.status == "rescored":
            lines.append(GradeLine(RESCORED_WORDS, f"Question {decision.question} = {format_points(decision.points)}"))
        if decision.status != "applied" or (decision.question is not None and decision.points is None):
            continue
        what = f"Question {decision.question}" if decision.question is not None else _label(decision.item)
        points = f"{what} = {format_points(decision.points)}" if decision.points is not None else f"{what} unchanged"
        comment = decision.comment if decision.question is None else ""  # an answer's is shown with the answer
        lines.append(GradeLine(f"Reviewed by {decision.decided_by}", points, comment))
    if result.late and result.late.penalty_fraction:
        days = f"{result.late.days_late} day(s) late" if result.late.days_late else "late"
        lines.append(GradeLine(f"Late penalty ({days})", f"-{result.late.penalty_fraction:.0%}",
                               _shown(result.late.reason, host)))  # fmt: skip
    for override in result.overrides:
        changed = f"{_label(override.item)} = {format_points(override.points)}"
        lines.append(GradeLine(f"Changed by {override.decided_by}", changed, _shown(override.reason, host)))
    lines += [GradeLine("How your submission was read", "", note) for note in import_words(result.notes)]
    final = result.final_points.total if result.final_points.total is not None else result.points.total
    lines.append(GradeLine("Final grade", _points(final, maximum), emphasis=True))
    return _points(final, maximum), lines


def _item_reason(item: ItemPoints, host: HostPaths) -> str:
    """The item's reason in the student's words: what the accuracy earns, no scoring method's name."""
    shown = "-" if item.points is None else format_points(item.points)
    return _shown(item_words(item.item, item.reason, shown, format_points(item.max_points)), host)


def answer_views(result: Result, host: HostPaths) -> tuple[list[AnswerView], str | None]:
    if not result.answers:
        return [], "No written answers were graded."
    try:
        answers = AnswersResult.model_validate(result.answers)
    except ValidationError:
        return [], "The written answers' details could not be read; the points above still stand."
    decided = {d.question: d for d in result.decisions if d.status == "applied" and d.question is not None}
    rescored = {d.question: d for d in result.decisions if d.status == "rescored"}
    views = []
    for question in answers.questions:
        notes = [FLAG_WORDS.get(flag, flag) for flag in question.flags]  # what was missing is in the reason
        view = AnswerView(question.number, _points(question.points, question.max_points),
                          _shown(question_words(question.reason), host), _shown(question.answer_text, None), notes,
                          question.needs_review)  # fmt: skip
        decision = decided.get(question.number)
        if question.number in rescored and decision is None:
            view.points = _points(rescored[question.number].points, question.max_points)
            view.reason = f"{RESCORED_WORDS}; the grader alone had given {_number(question.points)}."
        if decision is not None:
            if decision.points is not None:
                view.points = _points(decision.points, question.max_points)
                view.reason = f"Graded by {decision.decided_by}; the grader had given {_number(question.points)}."
            view.needs_review, view.comment = False, decision.comment
        views.append(view)
    note = f"The written answers could not be graded: {_shown(answers.error, host)}" if answers.error else None
    if note and not any(d.subject == ANSWERS_ERROR and d.status == "applied" for d in result.decisions):
        note += f" {FILE_REVIEW_WORDS}"
    return views, note


def warnings(result: Result, host: HostPaths) -> list[str]:
    """The grader's own words only: nothing here is a string the sandbox returned."""
    found = []
    if result.status != "graded":
        kind = result.error_kind or "error"
        found.append(ERROR_WORDS.get(kind, "Your model could not be graded."))
    if result.run:
        found += [warning_words(warning) for warning in result.run.warnings]
    if result.answers:
        with contextlib.suppress(ValidationError):
            found += [_shown(warning, host) for warning in AnswersResult.model_validate(result.answers).warnings]
    return found


def student_view(result: Result, split: ReportSplit, host: HostPaths) -> StudentView:
    grade, lines = grade_lines(result, host)
    baselines = {entry.baseline: entry.accuracy for entry in result.comparison}
    comparison = [(entry.baseline, f"{entry.accuracy:.2%}", f"{entry.difference * 100:+.2f} points", entry.beats)
                  for entry in result.comparison]  # fmt: skip
    pictures = []
    if result.per_class_accuracy and len(result.per_class_accuracy) == len(CIFAR10_CLASSES):
        pictures.append(("Accuracy on each class", chart(charts.per_class_accuracy(
            CIFAR10_CLASSES, result.per_class_accuracy, result.accuracy, baselines))))  # fmt: skip
    if result.confusion_matrix and len(result.confusion_matrix) == len(CIFAR10_CLASSES):
        pictures.append(("Confusion matrix", chart(charts.confusion_heatmap(CIFAR10_CLASSES, result.confusion_matrix))))
    strip, strip_note = _strip(result, split)
    answers, answers_note = answer_views(result, host)
    return StudentView(
        student=result.student,
        graded=result.status == "graded",
        grade=grade,
        grade_lines=lines,
        accuracy=None if result.accuracy is None else f"{result.accuracy:.2%}",
        comparison=comparison,
        charts=pictures,
        strip=strip,
        strip_note=strip_note,
        answers=answers,
        answers_note=answers_note,
        warnings=warnings(result, host),
        recorded_error=_shown(result.error, host) if result.status != "graded" and result.error else None,
    )


def _strip(result: Result, split: ReportSplit) -> tuple[list[tuple[str, str, str]], str | None]:
    if result.status != "graded" or not result.predictions:
        return [], None
    if split.images is None:
        return [], UNAVAILABLE
    chosen = split.misclassified(result.predictions) if result.inputs.split == split.sha256 else None
    if chosen is None:
        return [], OTHER_SPLIT
    if not chosen:
        return [], "Every test image was classified correctly."
    return [(charts.png_data_uri(split.images.images[index]), CIFAR10_CLASSES[true], CIFAR10_CLASSES[predicted])
            for index, true, predicted in chosen], None  # fmt: skip


PAGE = template("student.html")


def student_page(result: Result, split: ReportSplit, host: HostPaths, key: str | None = None) -> str:
    view = student_view(result, split, host)
    return render(PAGE, title=f"Lab 8 result: {result.student}", view=view, review_words=REVIEW_WORDS,
                  recorded_words=RECORDED_WORDS, key=key)  # fmt: skip

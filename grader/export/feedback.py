"""The short form of a student's report, as plain text: what goes into the LMS's feedback to the student.

Built from a result dict (results/<username>.json): the total and each item against its maximum,
the accuracy against the reference baselines, the late penalty, the TA's overrides,
the import's choices (a late attempt set aside, answers from Blackboard's text field), and each
Exercise 2 question's points with its reason, the TA's comment once decided, and the page's words that a TA will
read it while its review is pending. Every string that came from a submission (an error
message, a reason quoting an answer) is cut to a size, stripped of control characters and of the
host's folders (a TA's `submissions/dave/` means nothing to dave), and a cell never starts as a
spreadsheet formula. An error message is labelled as recorded: it can quote the student's own code.
The HTML report can reuse `feedback_lines`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from grader.export.base import TOTAL, ExportSettings, defuse_formula, final_points, format_points, item_label
from grader.report.text import CONTROL
from grader.report.words import FILE_REVIEW_WORDS, RESCORED_WORDS, REVIEW_WORDS, import_words, question_words
from grader.review.subjects import ANSWERS_ERROR

MAX_ERROR_CHARS = 300  # the full error stays in the result; the student gets its gist
MAX_REASON_CHARS = 200
MAX_COMMENT_CHARS = 500  # a TA's comment from grader review
MAX_FEEDBACK_CHARS = 3000  # LMS feedback fields take more, but a note this long is no longer short
# An absolute path (POSIX, ~, or a Windows drive) up to its last separator: the folders are the host's.
ABSOLUTE_FOLDERS = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:[\\/]|~?/)(?:[^\s\\/:'\"]+[\\/])+")


def clean(text: object, limit: int) -> str:
    """One line of at most `limit` characters, without control or bidi characters (the reports' CONTROL)."""
    flat = " ".join(CONTROL.sub(" ", str(text)).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def without_host_paths(text: str, student: str) -> str:
    """`submissions/dave/weights.pth: too large` -> `weights.pth: too large`; `/tmp/x/dave: no model` -> `no model`."""
    if student:
        name, before = re.escape(student), r"(?<![\w.])(?:[^\s:'\"]*[\\/])?"
        text = re.sub(rf"{before}{name}(?:[\\/]|:\s*)", "", text)  # the folder before a file name, or as a prefix
        text = re.sub(rf"(?<![\w.])[^\s:'\"]*[\\/]{name}\b", "your submission", text)  # the folder itself
    return ABSOLUTE_FOLDERS.sub("", text)


def _points_of(value: float | None, maximum: float | None) -> str:
    shown = "-" if value is None else format_points(value)
    return shown if maximum is None else f"{shown} / {format_points(maximum)}"


def _item_lines(result: Mapping[str, Any], final: dict[str, float | None]) -> list[str]:
    maxima = {str(item.get("item")): item.get("max_points") for item in result.get("items") or []}
    names = [name for name in dict.fromkeys([*maxima, *final]) if name != TOTAL]
    return [f"{item_label(name)}: {_points_of(final.get(name), maxima.get(name))}" for name in names]


def _accuracy_lines(result: Mapping[str, Any]) -> list[str]:
    if result.get("accuracy") is None:
        return []
    lines = [f"Test accuracy: {result['accuracy']:.2%}"]
    for entry in result.get("comparison") or []:
        accuracy, difference = entry.get("accuracy"), entry.get("difference")
        if accuracy is None or difference is None:
            continue
        verdict = "above" if entry.get("beats") else "below"
        lines.append(
            f"  {clean(entry.get('baseline'), 60)} baseline {accuracy:.2%}: "
            f"{abs(difference) * 100:.2f} points {verdict}"
        )
    return lines


def _applied_decisions(result: Mapping[str, Any], status: str = "applied") -> dict[str, Mapping[str, Any]]:
    """The TA's review decisions that apply (not re-opened), by subject: q1, error, integrity:<code>, ...;
    status "rescored": the answers the review regraded from the TA's grades of similar answers."""
    return {str(entry.get("subject")): entry for entry in result.get("decisions") or []
            if entry.get("status") == status}  # fmt: skip


def _comment_line(decision: Mapping[str, Any] | None, indent: str) -> list[str]:
    comment = clean(decision.get("comment") or "", MAX_COMMENT_CHARS) if decision else ""
    return [f"{indent}TA's comment: {comment}"] if comment else []


def _question_lines(result: Mapping[str, Any], student: str) -> list[str]:
    answers = result.get("answers") or {}
    decided = _applied_decisions(result)
    rescored = _applied_decisions(result, "rescored")
    lines = []
    for question in answers.get("questions") or []:
        decision = decided.get(f"q{question.get('number')}")
        rescore = rescored.get(f"q{question.get('number')}")
        if decision is not None and decision.get("points") is not None:
            points = _points_of(float(decision["points"]), question.get("max_points"))
            reason = f"graded by {clean(decision.get('decided_by'), 80)}"
        elif decision is None and rescore is not None and rescore.get("points") is not None:
            points = _points_of(float(rescore["points"]), question.get("max_points"))
            reason = RESCORED_WORDS
        else:
            reason = question_words(without_host_paths(str(question.get("reason") or ""), student))
            reason = clean(reason, MAX_REASON_CHARS)
            points = _points_of(question.get("points"), question.get("max_points"))
        lines.append(f"  Question {question.get('number')}: {points}" + (f" - {reason}" if reason else ""))
        lines += _comment_line(decision, "    ")
        if decision is None and question.get("needs_review"):
            lines.append(f"    {REVIEW_WORDS}")
    if answers.get("error"):
        lines.append(f"  {clean(without_host_paths(str(answers['error']), student), MAX_REASON_CHARS)}")
        if ANSWERS_ERROR not in decided:
            lines.append(f"  {FILE_REVIEW_WORDS}")
    return ["Exercise 2 answers:", *lines] if lines else []


def _policy_lines(result: Mapping[str, Any], student: str) -> list[str]:
    lines = []
    late = result.get("late") or {}
    if late.get("days_late"):
        lines.append(f"Late: {clean(late.get('reason') or str(late['days_late']) + ' day(s)', MAX_REASON_CHARS)}")
    lines += import_words([str(note) for note in result.get("notes") or []])
    for subject, decision in _applied_decisions(result).items():
        if decision.get("question") is not None:
            continue  # with its question
        points = decision.get("points")
        decided = "kept" if points is None else f"set to {format_points(float(points))}"
        lines.append(
            f"{item_label(str(decision.get('item')))} {decided} by {clean(decision.get('decided_by'), 80)} after "
            f"review ({clean(subject, 60)})"
        )
        lines += _comment_line(decision, "  ")
    for override in result.get("overrides") or []:
        points = format_points(float(override.get("points") or 0))
        reason = clean(without_host_paths(str(override.get("reason")), student), MAX_REASON_CHARS)
        lines.append(
            f"{item_label(str(override.get('item')))} set to {points} by {clean(override.get('decided_by'), 80)}: "
            f"{reason}"
        )
    return lines


def feedback_lines(result: Mapping[str, Any] | None, settings: ExportSettings) -> list[str]:
    """The feedback, one line per entry, total first; a missing result says no submission was received."""
    if result is None:
        return [f"No submission was received for {settings.column_name}."]
    student = str(result.get("student") or "")
    final = final_points(result)
    lines = []
    if final.get(TOTAL) is not None:
        lines.append(f"{settings.column_name}: {_points_of(final[TOTAL], settings.points_possible)}")
    if result.get("status") == "error":
        error = clean(without_host_paths(str(result.get("error") or "unknown error"), student), MAX_ERROR_CHARS)
        lines.append("Your submission could not be fully graded.")
        lines.append(f"Message recorded (it can quote your code and its output): {error}")
    lines += _item_lines(result, final) if final.get(TOTAL) is not None else []
    lines += _accuracy_lines(result) + _policy_lines(result, student) + _question_lines(result, student)
    return lines


def feedback_text(result: Mapping[str, Any] | None, settings: ExportSettings) -> str:
    """feedback_lines joined by newlines, cut to MAX_FEEDBACK_CHARS, safe to put in a spreadsheet cell."""
    text = "\n".join(feedback_lines(result, settings))
    if len(text) > MAX_FEEDBACK_CHARS:
        text = text[: MAX_FEEDBACK_CHARS - 4].rstrip() + "\n..."
    return defuse_formula(text)

"""The self-check's console report: what the grader measured, what to fix, and the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from grader.check.selfcheck import CheckReport
from grader.report.text import line, literal

LEVEL_STYLE = {"error": ("error", "red"), "warning": ("warning", "yellow"), "info": ("note", "dim")}


def render_check(report: CheckReport, console: Console) -> None:
    result = report.result
    if report.staged:
        files = ", ".join(report.staged.sources)
        console.print(line(("Checked", "bold"), f" {report.folder}: {files}"))
    if result and result.run:
        console.print(literal(f"Sandbox: {result.run.backend} ({result.run.isolation}), device {result.run.device}"))
        if not result.run.sandboxed:
            console.print(
                literal(
                    "No bubblewrap here, so your model ran in a plain process: fine for checking your own work. "
                    "Graders run it in a real sandbox, with no network and nothing but your files and the images."
                )
            )
    if result and result.accuracy is not None:
        console.print(line("Accuracy: ", (f"{result.accuracy:.2%}", "bold"), f" {_images_phrase(report)}"))
    if result and result.items:
        item = result.items[0]
        estimate = " (an estimate from the quick subset)" if report.quick else ""
        points = "-" if item.points is None else f"{item.points:g}"
        console.print(line("Exercise 1: ", (f"{points} / {item.max_points:g}", "bold"), f" points{estimate}"))
    if result and result.error:
        console.print(line(("Grading would fail", "red"), f" ({result.error_kind}): {result.error}"))
    if report.answers:
        console.print(_answers_line(report))
    for finding in sorted(report.findings, key=lambda f: ("error", "warning", "info").index(f.level)):
        console.print(line(LEVEL_STYLE[finding.level], f" [{finding.code}] {finding.message}"))
        if finding.hint:
            console.print(literal(_indent(finding.hint)))
    if report.passed:
        console.print(line(("PASS", "green bold"), ": this submission runs in grading as it stands."))
    else:
        console.print(line(("FAIL", "red bold"), ": fix the errors above before you upload."))


def _images_phrase(report: CheckReport) -> str:
    name = report.result.split_name if report.result else "the test split"
    if report.quick:
        return (
            f"on a fixed quick subset of {report.images:,} of the {report.split_images:,} images of {name} "
            "(the first of each class); run without --quick for the grader's figure"
        )
    return f"on all {report.images:,} images of {name}"


def _answers_line(report: CheckReport) -> Text:
    answers = report.answers
    if answers.problem:
        return line("Answers: ", (answers.problem, "red"))
    if not answers.missing:
        return literal(f"Answers: {answers.file} has all {len(answers.questions)} answers")
    found = ", ".join(map(str, answers.found)) or "none"
    return literal(f"Answers: {answers.file} has answers to {found}; missing {', '.join(map(str, answers.missing))}")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())

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
        # The device is what the run reported: a run that failed before it started inference reports none.
        device = f", device {result.run.device}" if result.run.device else ""
        console.print(literal(f"Sandbox: {result.run.backend} ({result.run.isolation}){device}"))
        if not result.run.sandboxed:
            console.print(
                literal(
                    "No bubblewrap here, so your model ran in a plain process: fine for checking your own work. "
                    "Graders run it in a real sandbox, with no network and nothing but your files and the images."
                )
            )
    if result and result.accuracy is not None:
        console.print(line("Accuracy: ", (f"{result.accuracy:.2%}", "bold"), f" {_images_phrase(report)}"))
    if result and (item := _item(report, "exercise1")):
        estimate = " (an estimate from the quick subset)" if report.quick else ""
        points = "-" if item.points is None else f"{item.points:g}"
        console.print(line("Exercise 1: ", (f"{points} / {item.max_points:g}", "bold"), f" points{estimate}"))
    if result and result.error:
        console.print(line(("Grading would fail", "red"), f" ({result.error_kind}): {result.error}"))
    if report.answers:
        console.print(_answers_line(report))
    if exercise2 := _exercise2_line(report):
        console.print(exercise2)
    for finding in sorted(report.findings, key=lambda f: ("error", "warning", "info").index(f.level)):
        console.print(line(LEVEL_STYLE[finding.level], f" [{finding.code}] {finding.message}"))
        if finding.hint:
            console.print(literal(_indent(finding.hint)))
    console.print(_verdict(report))


def _verdict(report: CheckReport) -> Text:
    if not report.passed:
        return line(("FAIL", "red bold"), ": fix the errors above before you upload.")
    costliest = report.costliest_fix
    if costliest is None:
        return line(("PASS", "green bold"), ": this submission runs in grading as it stands.")
    lost = f"about {round(costliest.points_lost or 0):g} points of Exercise 1 are lost"
    return line(("PASS", "yellow bold"), f", but {lost}: {costliest.fix} (see the {costliest.code} warning).")


def _item(report: CheckReport, name: str):
    return next((item for item in report.result.items if item.item == name), None) if report.result else None


def _exercise2_line(report: CheckReport) -> Text | None:
    """The machine's score of the answers, as grading computes it; a TA may change it on review."""
    answers = (report.result.answers if report.result else None) or {}
    points, most = answers.get("points"), answers.get("max_points")
    if not isinstance(points, (int, float)) or not isinstance(most, (int, float)):
        return None  # no answers file, or one that could not be scored: the answers line says why
    estimate = f"about {round(points, 1):g} of {most:g} points by the machine's reading"
    review = "; a TA reviews answers it is unsure of" if answers.get("needs_review") else ""
    return line("Exercise 2: ", (estimate, "bold"), review)


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
    if answers.missing:
        found = ", ".join(map(str, answers.found)) or "none"
        missing = ", ".join(map(str, answers.missing))
        return literal(f"Answers: {answers.file} has answers to {found}; missing {missing}")
    count = len(answers.questions)
    caveats = [
        *([] if answers.numbered else ["not numbered, so which answer is which is the machine's guess"]),
        *([] if not answers.language else ["not in English, so a TA grades them"]),
    ]
    if caveats:
        return literal(f"Answers: {answers.file} has text for all {count} questions, but {'; '.join(caveats)}")
    return literal(f"Answers: {answers.file} has all {count} answers, numbered")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())

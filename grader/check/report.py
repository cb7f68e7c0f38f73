"""The self-check's console report: what the grader measured, what to fix, and the verdict."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from grader.check.selfcheck import CheckReport

LEVEL_STYLE = {"error": "[red]error[/red]", "warning": "[yellow]warning[/yellow]", "info": "[dim]note[/dim]"}


def render_check(report: CheckReport, console: Console) -> None:
    result = report.result
    if report.staged:
        files = ", ".join(report.staged.sources)
        console.print(f"[bold]Checked[/bold] {escape(str(report.folder))}: {escape(files)}")
    if result and result.run:
        console.print(f"Sandbox: {result.run.backend} ({escape(result.run.isolation)}), device {result.run.device}")
    if result and result.accuracy is not None:
        console.print(f"Accuracy: [bold]{result.accuracy:.2%}[/bold] {_images_phrase(report)}")
    if result and result.items:
        item = result.items[0]
        estimate = " (an estimate from the quick subset)" if report.quick else ""
        points = "-" if item.points is None else f"{item.points:g}"
        console.print(f"Exercise 1: [bold]{points} / {item.max_points:g}[/bold] points{estimate}")
    if result and result.error:
        console.print(f"[red]Grading would fail[/red] ({result.error_kind}): {escape(result.error)}")
    if report.answers:
        console.print(_answers_line(report))
    for finding in sorted(report.findings, key=lambda f: ("error", "warning", "info").index(f.level)):
        console.print(f"{LEVEL_STYLE[finding.level]} [{finding.code}] {escape(finding.message)}")
        if finding.hint:
            console.print(escape(_indent(finding.hint)), highlight=False)
    if report.passed:
        console.print("[green bold]PASS[/green bold]: this submission runs in grading as it stands.")
    else:
        console.print("[red bold]FAIL[/red bold]: fix the errors above before you upload.")


def _images_phrase(report: CheckReport) -> str:
    name = report.result.split_name if report.result else "the test split"
    if report.quick:
        return (
            f"on a fixed quick subset of {report.images:,} of the {report.split_images:,} images of {name} "
            "(the first of each class); run without --quick for the grader's figure"
        )
    return f"on all {report.images:,} images of {name}"


def _answers_line(report: CheckReport) -> str:
    answers = report.answers
    if answers.problem:
        return f"Answers: [red]{escape(answers.problem)}[/red]"
    if not answers.missing:
        return f"Answers: {escape(answers.file)} has all {len(answers.questions)} answers"
    found = ", ".join(map(str, answers.found)) or "none"
    return f"Answers: {escape(answers.file)} has answers to {found}; missing {', '.join(map(str, answers.missing))}"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())

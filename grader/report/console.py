"""The rich console report of one student's result."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.datasets import CIFAR10_CLASSES
from grader.export.base import format_points
from grader.integrity.model import IntegrityReport
from grader.report.text import line, literal
from grader.report.words import import_words
from grader.results.model import Result, RunInfo
from grader.sandbox.protocol import warning_words


def _points(value: float | None, maximum: float) -> str:
    return "-" if value is None else f"{format_points(value)} / {format_points(maximum)}"


def render_result(result: Result, console: Console | None = None) -> None:
    console = console or Console()
    ok = result.status == "graded"
    heading = line((result.student, "bold"), "  ", ("graded", "green") if ok else ("error", "red"))
    summary = Table.grid(padding=(0, 2))
    if result.accuracy is not None:
        summary.add_row(literal("Accuracy"), line((f"{result.accuracy:.2%}", "bold"), " on ", result.split_name))
    for item in result.items:
        summary.add_row(literal(item.item.capitalize()), literal(_points(item.points, item.max_points)),
                        literal(item.reason))  # fmt: skip
    total_max = sum(item.max_points for item in result.items)
    summary.add_row(literal("Total"), literal(_points(result.points.total, total_max), "bold"))
    if result.late and result.late.penalty_fraction:
        summary.add_row(literal("Late", "yellow"), literal(f"-{result.late.penalty_fraction:.0%}"),
                        literal(result.late.reason))  # fmt: skip
    for override in result.overrides:
        summary.add_row(literal("Override", "yellow"), literal(f"{override.item} = {format_points(override.points)}"),
                        literal(f"{override.reason} ({override.decided_by})"))  # fmt: skip
    for decision in result.decisions:  # grader review's
        label = {"applied": "Reviewed", "reopened": "Re-opened", "rescored": "Rescored"}[decision.status]
        what = f"Q{decision.question}" if decision.question is not None else decision.subject
        points = "unchanged" if decision.points is None else format_points(decision.points)
        summary.add_row(literal(label, "yellow"), literal(f"{what} = {points}"),
                        literal(f"{decision.comment} ({decision.decided_by})".strip()))  # fmt: skip
    for note in import_words(result.notes):
        summary.add_row(literal("Import", "yellow"), literal(""), literal(note))
    if result.final_points.total != result.points.total:
        summary.add_row(literal("Final"), literal(_points(result.final_points.total, total_max), "bold"))
    if result.error:
        summary.add_row(literal("Error", "red"), literal(result.error_kind, "red"), literal(result.error))
    if result.run:
        run = result.run
        summary.add_row(literal("Sandbox"), literal(f"{run.backend} ({run.isolation})"), _reported(run))
        if not run.sandboxed:
            summary.add_row(literal("Isolation", "yellow"), literal("process", "yellow"),
                            literal("not a security boundary: graded with --isolation process"))  # fmt: skip
        for warning in run.warnings:
            summary.add_row(literal("Warning", "yellow"), literal(warning.code), literal(warning_words(warning)))
    if result.integrity:
        _integrity_rows(summary, result.integrity)
    timings = result.timings
    if timings.total_seconds is not None:
        parts = [f"total {timings.total_seconds:.1f} s"]
        if timings.inference_seconds is not None:
            parts.append(f"inference {timings.inference_seconds:.2f} s")
        if timings.sandbox_seconds is not None:
            parts.append(f"sandbox {timings.sandbox_seconds:.1f} s")
        summary.add_row(literal("Timing"), literal(", ".join(parts)))
    console.print(Panel(summary, title=heading, expand=False))
    if result.comparison:
        _render_comparison(result, console)
    elif result.accuracy is not None:
        console.print(
            literal("No reference baseline was measured on this split; `grader reference grade` measures them.", "dim")
        )
    if result.per_class_accuracy:
        _render_per_class(result, console)


def _reported(run: RunInfo) -> Text:
    """The figures the run reported about itself: student code could have set them, so they are said to be its."""
    params = f", {run.parameter_count:,} parameters" if run.parameter_count is not None else ""
    return literal(f"the run reported: device {run.device or '?'}{params}", "dim")


def _integrity_rows(summary: Table, integrity: IntegrityReport) -> None:
    """One plain line per flag (never a change of points: the TA decides); else what was checked."""
    for flag in integrity.flags:
        summary.add_row(literal("Integrity", "bold yellow"), literal(flag.code, "yellow"), literal(flag.message))
    if integrity.flags:
        return
    checked = ["order shuffled"] if integrity.order_permuted else []
    checked += [f"{name} {accuracy:.1%}" for name, accuracy in integrity.perturbed_accuracy.items()]
    if integrity.generalisation_gap is not None:
        checked.append(f"train - test {integrity.generalisation_gap:+.1%}")
    summary.add_row(literal("Integrity"), literal("no flags"), literal(", ".join(checked + integrity.not_measured)))


def _render_comparison(result: Result, console: Console) -> None:
    table = Table(title="Compared with the reference baselines", title_justify="left")
    for column in ("Baseline", "Its accuracy", "Difference", "Beaten"):
        table.add_column(column, justify="right" if column != "Baseline" else "left")
    for entry in result.comparison:
        table.add_row(
            literal(entry.baseline),
            literal(f"{entry.accuracy:.2%}"),
            literal(f"{entry.difference * 100:+.2f} pts", "green" if entry.beats else "red"),
            literal("yes" if entry.beats else "no"),
        )
    console.print(table)


def _render_per_class(result: Result, console: Console) -> None:
    table = Table(title="Per class", title_justify="left")
    table.add_column("Class")
    table.add_column("Accuracy", justify="right")
    table.add_column("Most confused with")
    for index, (name, accuracy) in enumerate(zip(CIFAR10_CLASSES, result.per_class_accuracy)):
        row = list(result.confusion_matrix[index]) if result.confusion_matrix else []
        confused = ""
        if row:
            row[index] = -1
            other = max(range(len(row)), key=row.__getitem__)
            confused = f"{CIFAR10_CLASSES[other]} ({row[other]})" if row[other] > 0 else ""
        table.add_row(literal(name), literal(f"{accuracy:.1%}"), literal(confused))
    console.print(table)

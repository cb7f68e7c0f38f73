"""The rich console report of one student's result."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from grader.datasets import CIFAR10_CLASSES
from grader.results.model import Result


def _points(value: float | None, maximum: float) -> str:
    return "-" if value is None else f"{value:g} / {maximum:g}"


def render_result(result: Result, console: Console | None = None) -> None:
    console = console or Console()
    ok = result.status == "graded"
    heading = f"[bold]{result.student}[/bold]  " + ("[green]graded[/green]" if ok else "[red]error[/red]")
    summary = Table.grid(padding=(0, 2))
    if result.accuracy is not None:
        summary.add_row("Accuracy", f"[bold]{result.accuracy:.2%}[/bold] on {result.split_name}")
    for item in result.items:
        summary.add_row(item.item.capitalize(), _points(item.points, item.max_points), item.reason)
    total_max = sum(item.max_points for item in result.items)
    summary.add_row("Total", f"[bold]{_points(result.points.total, total_max)}[/bold]")
    if result.late and result.late.penalty_fraction:
        summary.add_row("[yellow]Late[/yellow]", f"-{result.late.penalty_fraction:.0%}", result.late.reason)
    for override in result.overrides:
        summary.add_row("[yellow]Override[/yellow]", f"{override.item} = {override.points:g}",
                        f"{override.reason} ({override.decided_by})")  # fmt: skip
    if result.final_points.total != result.points.total:
        summary.add_row("Final", f"[bold]{_points(result.final_points.total, total_max)}[/bold]")
    if result.error:
        summary.add_row("[red]Error[/red]", f"[red]{result.error_kind}[/red]", result.error)
    if result.run:
        run = result.run
        params = f"{run.parameter_count:,} parameters" if run.parameter_count is not None else ""
        summary.add_row("Sandbox", f"{run.backend} ({run.isolation})", f"device {run.device or '?'} {params}")
        for warning in run.warnings:
            summary.add_row("[yellow]Warning[/yellow]", "", warning)
    timings = result.timings
    if timings.total_seconds is not None:
        parts = [f"total {timings.total_seconds:.1f} s"]
        if timings.inference_seconds is not None:
            parts.append(f"inference {timings.inference_seconds:.2f} s")
        if timings.sandbox_seconds is not None:
            parts.append(f"sandbox {timings.sandbox_seconds:.1f} s")
        summary.add_row("Timing", ", ".join(parts))
    console.print(Panel(summary, title=heading, expand=False))
    if result.comparison:
        _render_comparison(result, console)
    elif result.accuracy is not None:
        console.print(
            "[dim]No reference baseline was measured on this split; `grader reference grade` measures them.[/dim]"
        )
    if result.per_class_accuracy:
        _render_per_class(result, console)


def _render_comparison(result: Result, console: Console) -> None:
    table = Table(title="Compared with the reference baselines", title_justify="left")
    for column in ("Baseline", "Its accuracy", "Difference", "Beaten"):
        table.add_column(column, justify="right" if column != "Baseline" else "left")
    for entry in result.comparison:
        colour = "green" if entry.beats else "red"
        table.add_row(
            entry.baseline,
            f"{entry.accuracy:.2%}",
            f"[{colour}]{entry.difference * 100:+.2f} pts[/{colour}]",
            "yes" if entry.beats else "no",
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
        table.add_row(name, f"{accuracy:.1%}", confused)
    console.print(table)

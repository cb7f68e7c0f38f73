"""`grader export`: the stored results, with the current course policy, through one of grader.export's formats.

The final points are brought up to date first (an override added since grading, a changed late
policy), and the results that change are saved, so the files on disk and the export agree.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from grader.batch.plan import student_folders
from grader.export.base import find_column, get_exporter, read_table
from grader.pipeline import CoursePolicy, apply_policy
from grader.report.text import line, literal
from grader.results.model import Result
from grader.results.store import load_results, results_lock, save_result
from grader.rubric.config import load_rubric

ROSTER_COLUMNS = ("Username", "SIS Login ID")


def read_roster(path: Path) -> list[str]:
    """Usernames from a downloaded gradebook (a Username or SIS Login ID column) or a file of one per line."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".xls", ".tsv"):
        header, rows = read_table(path)
        folded = [cell.strip().casefold() for cell in header]
        name = next((name for name in ROSTER_COLUMNS if name.casefold() in folded), ROSTER_COLUMNS[0])
        column = find_column(header, name, path)
        return [row[column].strip() for row in rows if row[column].strip() and "Points Possible" not in row[0]]
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def refresh_final_points(
    results: list[Result], submissions: Path, results_dir: Path, policy: CoursePolicy
) -> tuple[list[Result], int]:
    refreshed, changed = [], 0
    for result in results:
        updated = apply_policy(result, Path(submissions) / result.student, policy)
        if updated.model_dump() != result.model_dump():
            save_result(updated, results_dir)
            changed += 1
        refreshed.append(updated)
    return refreshed, changed


def export_results(
    *,
    format_name: str = "bb",
    rubric: Path = Path("rubric.yaml"),
    results: Path = Path("results"),
    submissions: Path = Path("submissions"),
    out: Path = Path("exports"),
    gradebook: Path | None = None,
    roster: Path | None = None,
    overrides: Path | None = None,
    console: Console,
) -> list[Path]:
    exporter = get_exporter(format_name)
    settings = load_rubric(rubric)
    policy = CoursePolicy.load(settings, rubric, overrides)
    with results_lock(Path(results)):
        found, unreadable = load_results(results)
        for name in unreadable:
            console.print(line(("skipped unreadable result", "yellow"), f" {name}"))
        policy.check({result.student for result in found} | {f.name for f in student_folders(submissions)})
        found, changed = refresh_final_points(found, submissions, results, policy)
    if changed:
        console.print(
            literal(f"updated the final points of {changed} result(s) to the current overrides and late policy")
        )
    if roster is not None:
        names = read_roster(roster)
    elif gradebook is not None:
        names = read_roster(gradebook)
    else:
        names = [folder.name for folder in student_folders(submissions)]
    return exporter.export([r.model_dump(mode="json") for r in found], names, settings.export, Path(out), gradebook)


def main(*, console: Console | None = None, **options) -> int:
    console = console or Console()
    for path in export_results(console=console, **options):
        console.print(literal(path))
    return 0

"""`grader export`: the stored results, with the current course policy, through one of grader.export's formats.

The final points are brought up to date first (an override added since grading, a changed late
policy), and the results that change are saved, so the files on disk and the export agree.
Samples (submissions/<name>/SAMPLE) are never exported. With a roster or a downloaded gradebook only
its students are exported; every export lists who matched, who is missing and who is unknown, warns by name
about exported results whose student has no folder in submissions/ (a previous class left in results/?), and
ends with one line when answers, errors or integrity flags still wait for a TA's decision (review.counts, as
`grader summary` and the class page count them): the export has the machine's points for those.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from grader.batch.class_warnings import results_without_folder, warn_results_without_folder, warn_waiting
from grader.export.base import get_exporter
from grader.export.roster import Reconciliation, read_roster, reconcile
from grader.intake.blackboard import MANIFEST, read_manifest
from grader.intake.class_folders import sample_names, student_folders
from grader.pipeline import CoursePolicy, apply_policy
from grader.report.text import first_names, line, literal
from grader.results.model import Result
from grader.results.store import load_results, results_lock, save_result
from grader.review.counts import review_counts, waiting_subjects
from grader.rubric.config import load_rubric


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


def assignment_names(folders: list[Path]) -> list[str]:
    """The assignment names the Blackboard import recorded, most common first."""
    counts: dict[str, int] = {}
    for folder in folders:
        if (folder / MANIFEST).is_file():
            try:
                name = read_manifest(folder).assignment
            except (OSError, ValueError):
                continue
            if name:
                counts[name] = counts.get(name, 0) + 1
    return sorted(counts, key=lambda name: -counts[name])


def render_reconciliation(reconciled: Reconciliation, missing_grade: str, console: Console) -> None:
    console.print(line(("matched", "green"), f" {len(reconciled.matched)}"))
    groups = (
        ("missing", reconciled.missing, f"in {reconciled.roster}, no result; exported as {missing_grade}"),
        ("unknown", reconciled.unknown, f"a result, but not in {reconciled.roster}; not exported"),
        ("not in the gradebook", reconciled.not_in_gradebook, "on --roster, not in the gradebook; not exported"),
    )
    for label, students, meaning in groups:
        if students or label != "not in the gradebook":
            style = "yellow" if students else "green"
            names = f": {first_names(students)}" if students else ""
            console.print(line((label, style), f" {len(students)} ({meaning}){names}"))


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
    all_columns: bool = False,
    console: Console,
) -> list[Path]:
    exporter = get_exporter(format_name)
    settings = load_rubric(rubric)
    policy = CoursePolicy.load(settings, rubric, overrides, results_dir=results)
    samples = sample_names(submissions)
    folders = student_folders(submissions)
    with results_lock(Path(results)):
        found, unreadable = load_results(results)
        for name in unreadable:
            console.print(line(("skipped unreadable result", "yellow"), f" {name}"))
        found = [result for result in found if result.student not in samples and not result.sample]
        policy.check({result.student for result in found} | {folder.name for folder in folders})
        found, changed = refresh_final_points(found, submissions, results, policy)
    if changed:
        console.print(
            literal(f"updated the final points of {changed} result(s) to current reviews, overrides and late policy")
        )
    if samples:
        console.print(line("left out the sample(s) ", (", ".join(sorted(samples)), "dim"), " (a SAMPLE file inside)"))
    reconciled = reconcile(
        (result.student for result in found),
        read_roster(roster) if roster is not None else None,
        read_roster(gradebook) if gradebook is not None else None,
        [folder.name for folder in folders],
    )
    on_roster = set(reconciled.exported)
    exported = [result for result in found if result.student in on_roster]
    written = exporter.export(
        [result.model_dump(mode="json") for result in exported], reconciled.exported, settings.export, Path(out),
        gradebook, all_columns=all_columns, assignment_names=assignment_names(folders),
        waiting={result.student: list(waiting_subjects(result, policy.copies)) for result in exported},
    )  # fmt: skip
    for note in exporter.notes:
        console.print(line((note, "yellow")))
    missing_grade = "0" if settings.export.missing_submission == "zero" else "blank"
    render_reconciliation(reconciled, missing_grade, console)
    for path in written:
        console.print(literal(path))
    warn_results_without_folder(results_without_folder(exported, submissions), submissions, results, console)
    warn_waiting(review_counts(exported, policy.copies), "the export has the machine's points for them", console)
    return written


def main(*, console: Console | None = None, **options) -> int:
    export_results(console=console or Console(), **options)
    return 0

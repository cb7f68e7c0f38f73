"""`grader grade STUDENT`: grade one submission, apply the course policy, save and print its result."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from grader.intake.shipped_example import is_shipped_example
from grader.integrity.copies import compare_class
from grader.pipeline import CoursePolicy, apply_policy, grade_submission, open_session
from grader.pipeline.policy import apply_new_copy_report
from grader.report.console import render_result
from grader.report.text import line, literal
from grader.results.store import save_result
from grader.rubric.config import load_rubric

EXAMPLE_NOTE = (
    "the shipped example (its files match the grader's own copy, byte for byte) runs in a plain process; "
    "any other folder needs bubblewrap or Docker"
)


def main(
    *,
    student: str,
    rubric: Path = Path("rubric.yaml"),
    submissions: Path = Path("submissions"),
    results: Path = Path("results"),
    overrides: Path | None = None,
    data: Path | None = None,
    sandbox: str | None = None,
    isolation: str | None = None,
    timeout: float | None = None,
    console: Console | None = None,
) -> int:
    """0 when the submission was graded, 1 when it ended in an error result (which is saved too)."""
    console = console or Console(soft_wrap=True)
    settings = load_rubric(rubric)
    folder = Path(student)
    if not folder.is_dir() or len(folder.parts) == 1:
        folder = Path(submissions) / student
    # The shipped example is the project's own code: it may run where there is no sandbox (a fresh laptop).
    trusted_example = isolation is None and is_shipped_example(folder)
    with (
        open_session(
            settings,
            rubric,
            data=data,
            backend=sandbox,
            timeout_seconds=timeout,
            extra_hidden=[Path(results).resolve(), Path(submissions).resolve()],
            isolation="process" if trusted_example else isolation,
        ) as session,
        console.status(literal(f"grading {folder.name} in the {session.backend.name} sandbox")),
    ):
        if session.isolation_warning and trusted_example:
            console.print(line(f"no sandbox here: {EXAMPLE_NOTE}"))
        elif session.isolation_warning:
            console.print(line((f"warning: {session.isolation_warning}", "yellow")))
        result = grade_submission(folder, session)
    policy = CoursePolicy.load(settings, rubric, overrides, results_dir=results)
    result = apply_policy(result, folder, policy)
    path = save_result(result, results)
    if not result.sample:  # a student regraded alone is compared with the class as grade --all compares them
        copies = compare_class(results, session.split.labels, settings.integrity, session.split_sha256)
        apply_new_copy_report(policy, copies, results, submissions, {result.student: folder})
    render_result(result, console)
    console.print(line(f"result written to {path}"))
    return 0 if result.status == "graded" else 1

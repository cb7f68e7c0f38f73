"""`grader check` and `grader pack`: the students' verbs, with the same options as `grader grade`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.console import Console

from grader.report.text import line, literal


def _run(staging: Path, console: Console, **options):
    from grader.check.report import render_check
    from grader.check.selfcheck import check_submission

    with console.status(literal(f"checking {options['submission']} in the local sandbox")):
        report = check_submission(
            options["submission"],
            staging,
            rubric_path=options["rubric"],
            data=options["data"],
            sandbox=options["sandbox"],
            timeout_seconds=options["timeout"],
            quick=options["quick"],
        )
    render_check(report, console)
    return report


def check_main(
    *,
    submission: Path,
    rubric: Path = Path("rubric.yaml"),
    data: Path | None = None,
    sandbox: str | None = None,
    timeout: float | None = None,
    quick: bool = False,
    console: Console | None = None,
) -> int:
    """0 when the submission passes, 1 when it would fail or lose points for a fixable reason."""
    console = console or Console(soft_wrap=True)
    with tempfile.TemporaryDirectory(prefix="grader-check-") as staging:
        report = _run(Path(staging), console, submission=submission, rubric=rubric, data=data, sandbox=sandbox,
                      timeout=timeout, quick=quick)  # fmt: skip
    return 0 if report.passed else 1


def pack_main(
    *,
    submission: Path,
    output: Path | None = None,
    rubric: Path = Path("rubric.yaml"),
    data: Path | None = None,
    sandbox: str | None = None,
    timeout: float | None = None,
    quick: bool = False,
    console: Console | None = None,
) -> int:
    """Writes the upload zip only when the check passes; 1 (and no zip) otherwise."""
    from grader.check.pack import default_zip_path, write_upload_zip

    console = console or Console(soft_wrap=True)
    output = output or default_zip_path(submission)
    with tempfile.TemporaryDirectory(prefix="grader-pack-") as staging:
        report = _run(Path(staging), console, submission=submission, rubric=rubric, data=data, sandbox=sandbox,
                      timeout=timeout, quick=quick)  # fmt: skip
        if not report.passed:
            console.print(line(("not packed", "red"), f": {output} was not written"))
            return 1
        names = write_upload_zip(report.staged, output)
    console.print(line(("packed", "green"), f" {', '.join(names)} into {output}: upload this file to Blackboard"))
    return 0

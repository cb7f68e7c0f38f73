"""`grader check` and `grader pack`: the students' verbs, with the same sandbox options as `grader grade`."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from grader.report.text import line, literal


@contextlib.contextmanager
def _checked(
    submission: Path,
    console: Console,
    *,
    rubric: Path = Path("rubric.yaml"),
    data: Path | None = None,
    sandbox: str | None = None,
    timeout: float | None = None,
    quick: bool = False,
) -> Iterator:
    """The self-check's report, printed; its staged copy of the submission lives until the block ends."""
    from grader.check.report import render_check
    from grader.check.selfcheck import check_submission

    with tempfile.TemporaryDirectory(prefix="grader-check-") as staging:
        with console.status(literal(f"checking {submission} in the local sandbox")):
            report = check_submission(
                submission,
                Path(staging),
                rubric_path=rubric,
                data=data,
                sandbox=sandbox,
                timeout_seconds=timeout,
                quick=quick,
            )
        render_check(report, console)
        yield report


def check_main(*, submission: Path, console: Console | None = None, **options) -> int:
    """0 when the submission passes, 1 when it would fail or lose points for a fixable reason.

    options: those of _checked (rubric, data, sandbox, timeout, quick)."""
    with _checked(submission, console or Console(soft_wrap=True), **options) as report:
        return report.exit_code


def pack_main(*, submission: Path, output: Path | None = None, console: Console | None = None, **options) -> int:
    """Writes the upload zip only when the check passes; 1 (and no zip) otherwise."""
    from grader.check.pack import default_zip_path, write_upload_zip

    console = console or Console(soft_wrap=True)
    output = output or default_zip_path(submission)
    with _checked(submission, console, **options) as report:
        if not report.passed:
            console.print(line(("not packed", "red"), f": {output} was not written"))
            return 1
        names = write_upload_zip(report.staged, output)
    console.print(line(("packed", "green"), f" {', '.join(names)} into {output}: upload this file to Blackboard"))
    return 0

"""The class workflow's subcommands: import-bb, export and summary (`grade --all` lives on `grade`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from grader.report.text import line, literal

console = Console(soft_wrap=True)


def register(commands: argparse._SubParsersAction) -> None:
    importer = commands.add_parser("import-bb", help="unpack a Blackboard Assignment bulk download into submissions/")
    importer.add_argument("zip", type=Path, help="the gradebook_....zip Blackboard's Assignment download gives")
    importer.add_argument("--submissions", type=Path, default=Path("submissions"))
    importer.add_argument("--rubric", type=Path, default=Path("rubric.yaml"), help="for attempts: and late:")
    importer.set_defaults(handler=cmd_import)

    export = commands.add_parser("export", help="write the grades for the LMS into exports/")
    export.add_argument("--format", default="bb", help="bb, bb-tab, canvas or full (default bb)")
    export.add_argument("--gradebook", type=Path, help="a downloaded gradebook to fill in (keeps its columns)")
    export.add_argument("--roster", type=Path, help="usernames, one a line, or a gradebook CSV (default: submitters)")
    export.add_argument("--results", type=Path, default=Path("results"))
    export.add_argument("--submissions", type=Path, default=Path("submissions"))
    export.add_argument("--out", type=Path, default=Path("exports"))
    export.add_argument("--rubric", type=Path, default=Path("rubric.yaml"))
    export.add_argument("--overrides", type=Path, help="TA overrides (default: overrides.yaml beside the rubric)")
    export.set_defaults(handler=cmd_export)

    summary = commands.add_parser("summary", help="the class summary of the stored results")
    summary.add_argument("--results", type=Path, default=Path("results"))
    summary.set_defaults(handler=cmd_summary)


def add_grade_all_options(grade: argparse.ArgumentParser) -> None:
    """The `grade` subcommand's options for the whole class."""
    grade.add_argument("--all", action="store_true", help="grade every student under --submissions, in parallel")
    grade.add_argument("--force", action="store_true", help="with --all: regrade even unchanged submissions")
    grade.add_argument("--workers", type=int, help="with --all: parallel sandboxes (default: rubric, GPUs or CPUs/2)")
    grade.add_argument("--overrides", type=Path, help="TA overrides (default: overrides.yaml beside the rubric)")


def cmd_grade_all(args: argparse.Namespace) -> int:
    from grader.batch.run import main

    return main(
        rubric=args.rubric,
        submissions=args.submissions,
        results=args.results,
        overrides=args.overrides,
        data=args.data,
        sandbox=args.sandbox,
        isolation=args.isolation,
        timeout=args.timeout,
        workers=args.workers,
        force=args.force,
        console=console,
    )


def cmd_import(args: argparse.Namespace) -> int:
    from grader.intake.blackboard import BulkDownloadError, import_bulk_download
    from grader.rubric.config import load_rubric

    rubric = load_rubric(args.rubric)
    due = rubric.late.deadline if rubric.late else None
    try:
        report = import_bulk_download(args.zip, args.submissions, rubric.attempts, due)
    except BulkDownloadError as error:
        console.print(line(("error:", "red"), f" {error}"))
        return 2
    for problem in report.lines():
        console.print(line(("!", "yellow"), f" {problem}"))
    console.print(
        literal(
            f"{args.zip}: {report.count('imported')} imported, {report.count('skipped')} skipped, "
            f"{report.count('error')} failed, into {args.submissions}/"
        )
    )
    return 1 if report.count("error") else 0


def cmd_export(args: argparse.Namespace) -> int:
    from grader.batch.export import main

    return main(
        format_name=args.format,
        rubric=args.rubric,
        results=args.results,
        submissions=args.submissions,
        out=args.out,
        gradebook=args.gradebook,
        roster=args.roster,
        overrides=args.overrides,
        console=console,
    )


def cmd_summary(args: argparse.Namespace) -> int:
    from grader.batch.summary import main

    return main(results=args.results, console=console)
